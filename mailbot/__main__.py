"""Allows ``python -m mailbot``."""

from mailbot.cli import main

main()
