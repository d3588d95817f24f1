"""Prefect flows: the orchestration around the stages, and the local Prefect server.

    film.py       one film: tasks per shot, retries, bounded concurrency, artifacts, the run's row
    nightly.py    every story of a folder, each its own film run, and the night's report
    schedules.py  nightly schedules as Prefect deployments, run by a process worker (`storyflow serve`)
    server.py     the local `prefect server start` behind `make ui`, and the temporary one

Policy (retries, caching, concurrency, names, artifacts, schedules) lives here; the work
lives in storyflow.stages. Flows may import every storyflow layer but the command line.
"""
