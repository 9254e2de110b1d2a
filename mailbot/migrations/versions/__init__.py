"""The revisions, oldest first: 0001 is the schema of the first release (made by `create_all`, without
migrations), each later file one change."""
