"""Widgets and display helpers shared by the console's screens."""
