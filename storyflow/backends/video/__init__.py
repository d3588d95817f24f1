"""Video backends: make clips from prompts, frames and tails of clips."""
