"""Secrets never reach the catalog, the logs, the summaries, Prefect or the C2PA manifest.

Keys are planted in the environment (where backends read them) and a film is made; then
every byte storyflow wrote, everything it printed, and Prefect's own database are searched.
"""

from __future__ import annotations

import pytest

from tests.support import TINY_STORY, run_cli

pytestmark = pytest.mark.slow

PLANTED = {
    "OPENAI_API_KEY": "sk-planted-openai-4f1d9a7c2b8e6d30",
    "GOOGLE_API_KEY": "AIza-planted-google-9b2c7e4a1f6d",
    "HF_TOKEN": "hf_planted_token_5e8a3c1b9d7f",
    "STORYFLOW_C2PA_PASSWORD": "planted-pass-7c3e1a9f5b2d",  # an unused secret of our own prefix
}


def test_planted_keys_appear_nowhere(prefect_server_state, tmp_path, write_story):
    story = write_story(TINY_STORY)
    home = tmp_path / "outputs"
    env = {**PLANTED, "PREFECT_API_URL": prefect_server_state["api_url"]}
    printed = []
    for args in (
        ["film", str(story), "--json"],
        ["film", str(story), "--json"],  # a cached rerun prints and records too
        ["catalog", "runs", "--json"],
        ["catalog", "verify", "--json"],
        ["catalog", "films"],
    ):
        result = run_cli(args, home=home, cwd=tmp_path, env=env)
        assert result.code == 0, result.stderr
        printed += [result.stdout, result.stderr]
    film = run_cli(["film", str(story), "--json"], home=home, cwd=tmp_path, env=env).json["film"]
    for args in (["provenance", film, "--json"], ["provenance", film], ["shots", film], ["verify", film, "--json"]):
        result = run_cli(args, home=home, cwd=tmp_path, env=env)
        assert result.code == 0, result.stderr
        printed += [result.stdout, result.stderr]

    # a key passed as a backend option is refused before anything is written, without being echoed
    refused = run_cli(["film", str(story), "--video-option", f"api_key={PLANTED['OPENAI_API_KEY']}"],
                      home=home, cwd=tmp_path, env=env)  # fmt: skip
    assert refused.code == 2 and "looks like a secret" in refused.stderr
    printed += [refused.stdout, refused.stderr]

    searched = 0
    for folder in (home, prefect_server_state["home"]):  # our files, and Prefect's database and logs
        for path in folder.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                searched += 1
                for name, value in PLANTED.items():
                    assert value.encode() not in data, f"{name}'s value found in {path}"
    for text in printed:
        for name, value in PLANTED.items():
            assert value not in text, f"{name}'s value was printed"
    assert searched > 30  # the film, clips, audio, catalog, stills, manifests and Prefect's db were all read
