"""mailbot: collects the reports schools send by email to an education department."""

__version__ = "0.1.0"
