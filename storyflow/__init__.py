"""storyflow: turn a written story into a finished short film.

Read the package top to bottom and it is the pipeline; each layer imports only the ones
below it (checked by import-linter: the contracts are in pyproject.toml, run by the tests):

    cli/        the command line and all terminal text                       (top)
    ../flows/   Prefect: orchestration around the stages (a package beside this one)
    stages/     the data path, one module per verb, in order:
                story -> plan -> narrate -> rewrite -> generate (extend, seams)
                -> audio -> mix -> stitch (subtitles, stills)
    catalog/    the shot catalog: the one door every generation goes through, provenance
    backends/   the generators behind small contracts: llm, video, music, speech, effects
    media/      pictures and sound in and out of files, shared by stages and backends
    core/       records, errors, settings, hashes, secrets: what every layer shares (bottom)

catalog/ and backends/ sit side by side and never import each other.
"""

__version__ = "0.1.0"
