"""Prefect flows: orchestration around the storyflow stages."""
