"""The daemon-guard command-line tool."""
