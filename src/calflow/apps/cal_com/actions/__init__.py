"""Cal.com actions, one module each with its input schema beside it."""
