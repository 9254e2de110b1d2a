"""Documents: what a report file is and what it says (type sniffing, the Word reader, legacy encodings)."""
