"""Built-in tools: each module holds what the model sees, how a call runs, and the item it yields."""
