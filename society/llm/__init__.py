"""LLM citizens: prompts, personas, bounded memory, asking the model and recording each call."""
