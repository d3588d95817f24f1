"""LLM backends: write storyboards and shot prompts."""
