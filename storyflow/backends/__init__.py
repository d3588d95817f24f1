"""The generators, behind one small contract per kind (base.py), found by name (registry.py).

    llm/       storyboards and shot prompts     (embedded: rule-based, offline)
    video/     clips from prompts and frames    (animatic: procedural previz)
    music/     the score from the moods         (procedural)
    speech/    narration                        (espeak: espeak-ng)
    effects/   sound from the picture           (procedural)

One module (or package) per backend, named after it: registry.py finds it there. Backends
may import core and media only: never a stage, the catalog, flows or Prefect; heavy
packages (torch, diffusers, transformers, google-genai, openai) only inside their methods.
"""
