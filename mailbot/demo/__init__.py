"""The demo: a roster, sample school emails and a config, processed without any server."""
