"""The data path, one module per verb, in the order a film is made:

    story.py      1. a story file -> Story (front matter and text, validated)
    plan.py       2. Story -> Storyboard, through an LLM backend, checked...
    coverage.py      ...that every part of the story is in some shot
    narrate.py    3. speak every line; shots stretch (or lines speed up) so speech fits
    rewrite.py    4. Shot -> ShotPrompt, through an LLM backend and the templates in prompts/
    generate.py   5. ShotPrompt -> ClipChain, through a video backend...
    extend.py        ...long shots cut into segments the backend can make,
    seams.py         ...each seam scored and guarded against colour drift,
    conform.py       ...each request fitted to what the backend can make,
    budget.py        ...the paid ones estimated and kept within --budget,
    takes.py         ...N takes of a shot (--candidates), scored, one played,
    rephrase.py      ...a prompt a provider's safety filter refused, rephrased once
    audio.py      6. effects from each shot's picture, the score from the moods
    mix.py        7. narration over ducked music over effects, normalised loudness, stems
    stitch.py     8. clips + sound -> the film...
    subtitles.py     ...subtitles timed by the speech,
    stills.py        ...title card, poster and contact sheet,
    film.py          ...made (or found made), recorded and published under plain names

Stages are plain typed functions. They may import the catalog (its public API, the door
in storyflow.catalog), the backend contracts, media and core; never Prefect, flows or the
command line, and never a concrete backend: they are handed one.
"""
