"""The console's screens: the dashboard, the queues, and the small modals around them."""
