"""SavvyCal actions: one module per action, each with its input schema beside it."""
