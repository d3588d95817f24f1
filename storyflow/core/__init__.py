"""What every layer shares: the records that cross stage boundaries and the rules around them.

    models.py      frozen pydantic records: Story, Storyboard, Shot, ShotPrompt, Clip, Film...
    errors.py      StoryflowError and its kinds; every error names its fix
    config.py      Settings: every STORYFLOW_ variable, in one place
    hashing.py     canonical JSON, content hashes, cache keys, derived seeds
    secrets.py     the one secret guard: what looks like a key never gets recorded
    templates.py   the prompt templates in prompts/ and their versions (sha256)
    vocabulary.py  moods, camera phrasing, what prompts avoid: shared by planners and scores
    timeline.py    where each shot sits in the film, frame-exact
    durations.py   fitting shot lengths to a target film length
    progress.py    progress events from the stages to whoever watches
    locks.py, processes.py   one run per film folder; is a process still alive

It imports nothing else of storyflow's: no stage, backend, catalog, media helper or Prefect.
"""
