"""Stitching: real clips encoded with storyflow's writer, films decoded back with PyAV."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from storyflow import media
from storyflow.core.errors import InputError, MediaError
from storyflow.core.models import (
    Clip,
    ClipChain,
    Shot,
    Storyboard,
    StyleBible,
    Transition,
)
from storyflow.core.timeline import film_timeline
from storyflow.media import decode_range
from storyflow.stages.stitch import (
    MIN_PIECE_FRAMES,
    ClipSource,
    CopyRun,
    RenderRun,
    plan_smart,
    stitch_film,
)

W, H, FPS = 160, 90, 12
RED, GREEN, BLUE = (200, 40, 40), (40, 200, 40), (40, 40, 200)


# ---------------------------------------------------------------- building real inputs


def shot_frames(colour: tuple[int, int, int], n: int, phase: int = 0) -> list[np.ndarray]:
    """A solid colour with a white bar that moves 5 px a frame: any dropped or repeated
    frame shifts the bar, so frame-exact comparisons notice it."""
    frames = []
    for i in range(n):
        frame = np.empty((H, W, 3), np.uint8)
        frame[:] = colour
        x = ((phase + i) * 5) % (W - 10)
        frame[:, x : x + 10] = 255
        frames.append(frame)
    return frames


def make_chain(
    folder: Path, shot_id: str, colour, lengths: list[int], size=(W, H), draw=shot_frames
) -> ClipChain:
    """A shot's clips, written with media.write_video like every backend's."""
    clips, done = [], 0
    for segment, n in enumerate(lengths):
        path = folder / f"{shot_id}-{segment}.mp4"
        frames = draw(colour, n, phase=done)
        if size != (W, H):
            from PIL import Image

            frames = [np.asarray(Image.fromarray(f).resize(size)) for f in frames]
        media.write_video(path, frames, size[0], size[1], FPS)
        clips.append(
            Clip(
                shot_id=shot_id,
                segment=segment,
                path=path,
                sha256=media.sha256_file(path),
                cache_key=f"{shot_id}-{segment}",
                num_frames=n,
                fps=FPS,
                width=size[0],
                height=size[1],
                strategy="text_to_video",
                backend="test",
                model="test",
                seed=0,
            )
        )
        done += n
    return ClipChain(shot_id=shot_id, clips=tuple(clips))


def make_board(specs: list[tuple[int, Transition]], *, title_card: bool) -> Storyboard:
    """specs: (frames, transition into the next shot) per shot."""
    shots = tuple(
        Shot(
            id=f"s{i + 1:02d}",
            index=i,
            beat=i,
            story_text="text",
            action=f"the hero walks {i}",
            duration=frames / FPS,
            narration=f"Line {i + 1} of the narration.",
            transition=transition,
        )
        for i, (frames, transition) in enumerate(specs)
    )
    return Storyboard(
        title="Night Ferry",
        slug="night-ferry",
        story_sha256="0" * 64,
        style=StyleBible(style="previz"),
        shots=shots,
        width=W,
        height=H,
        fps=FPS,
        seed=0,
        title_card=title_card,
    )


def make_mix(path: Path, board: Storyboard, chains: dict[str, ClipChain]) -> Path:
    timeline = film_timeline(board, {sid: c.num_frames for sid, c in chains.items()})
    t = np.arange(round(timeline.seconds * media.AUDIO_SAMPLE_RATE)) / media.AUDIO_SAMPLE_RATE
    media.write_wav(path, 0.3 * np.sin(2 * np.pi * 220 * t))
    return path


def decode(path: Path) -> np.ndarray:
    return np.stack(list(media.read_frames(path)))


def frame_times(path: Path) -> list[int]:
    """Presentation timestamps of every decoded frame."""
    import av

    with av.open(str(path)) as container:
        return [frame.pts for frame in container.decode(video=0)]


def decode_chain(chain: ClipChain) -> np.ndarray:
    return np.concatenate([decode(clip.path) for clip in chain.clips])


def copyable_range(chain: ClipChain, head: int, tail: int) -> tuple[int, int]:
    """Shot frames from the first keyframe at/after `head` to the last keyframe (or the
    shot's end) at/before `tail` frames from the end: what must survive bit for bit."""
    points, offset = {chain.num_frames}, 0
    for clip in chain.clips:
        points.update(offset + k for k in media.probe(clip.path).keyframes)
        offset += clip.num_frames
    first = min(p for p in points if p >= head)
    last = max(p for p in points if p <= chain.num_frames - tail)
    return first, last


@pytest.fixture
def clips_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "clips"
    folder.mkdir()
    return folder


def stitch(board, chains, tmp_path, strategy="smart", out="film"):
    wav = make_mix(tmp_path / "mix.wav", board, chains)
    return stitch_film(
        board,
        chains,
        wav,
        tmp_path / out,
        strategy=strategy,
        storyboard_json=tmp_path / "storyboard.json",
    )


# ---------------------------------------------------------------- smart: cuts


def test_cut_only_film_is_pure_stream_copy(clips_dir: Path, tmp_path: Path) -> None:
    board = make_board(
        [(24, Transition.CUT), (31, Transition.CUT), (20, Transition.CUT)], title_card=False
    )
    chains = {
        "s01": make_chain(clips_dir, "s01", RED, [24]),
        "s02": make_chain(clips_dir, "s02", GREEN, [18, 13]),  # two clips in one shot
        "s03": make_chain(clips_dir, "s03", BLUE, [20]),
    }
    film = stitch(board, chains, tmp_path)

    # the film is every source frame, in order, pixel for pixel: nothing was re-encoded
    frames = decode(film.path)
    sources = np.concatenate([decode_chain(chains[s.id]) for s in board.shots])
    assert len(frames) == 24 + 31 + 20 == film.num_frames
    assert np.array_equal(frames, sources)
    assert "0 pieces re-encoded" in film.stitch_strategy
    assert len(set(np.diff(frame_times(film.path)))) == 1  # evenly timed through the joins

    info = media.probe(film.path)
    assert (info.width, info.height, info.fps) == (W, H, FPS)
    assert info.video_codec == "h264" and info.audio_codec == "aac"
    sound = media.decode_audio(film.path)
    assert float(np.sqrt(np.mean(sound**2))) > 0.1  # a 0.3 sine: RMS about 0.21
    assert abs(len(sound) / media.AUDIO_SAMPLE_RATE - len(frames) / FPS) < 0.05

    # the returned record describes files that exist, and nothing else is left behind
    assert film.sha256 == media.sha256_file(film.path)
    assert (film.width, film.height, film.fps) == (W, H, FPS)
    assert sorted(p.name for p in (tmp_path / "film").iterdir()) == sorted(
        p.name for p in (film.path, film.subtitles, film.poster, film.contact_sheet)
    )
    with film.path.open("rb") as handle:  # +faststart: the index comes before the media
        head = handle.read(64 * 1024)
    assert head.find(b"moov") != -1 and (
        head.find(b"mdat") == -1 or head.find(b"moov") < head.find(b"mdat")
    )


def test_a_clip_too_short_to_copy_is_reencoded_with_its_neighbours(
    clips_dir: Path, tmp_path: Path
) -> None:
    board = make_board([(31, Transition.CUT), (20, Transition.CUT)], title_card=False)
    chains = {
        "s01": make_chain(clips_dir, "s01", RED, [18, 2, 11]),  # a 2-frame clip in the chain
        "s02": make_chain(clips_dir, "s02", BLUE, [20]),
    }
    film = stitch(board, chains, tmp_path)
    frames = decode(film.path)
    sources = np.concatenate([decode_chain(chains["s01"]), decode_chain(chains["s02"])])

    assert len(frames) == 51
    # every frame in its place (a slip would move the bar 5 px): re-encoded ones closely,
    # the rest bit for bit
    diff = np.abs(frames.astype(int) - sources.astype(int)).mean(axis=(1, 2, 3))
    assert diff.max() < 3, diff
    assert 2 <= (diff > 0).sum() <= 12  # only the piece around the short clip was re-encoded
    assert np.array_equal(frames[31:], sources[31:])
    # and the timestamps run evenly through the joins, as a player needs
    assert len(set(np.diff(frame_times(film.path)))) == 1


# ---------------------------------------------------------------- smart: transitions


def test_crossfade_blends_and_copies_everything_else(clips_dir: Path, tmp_path: Path) -> None:
    board = make_board([(25, Transition.CROSSFADE), (30, Transition.CUT)], title_card=False)
    chains = {
        "s01": make_chain(clips_dir, "s01", RED, [25]),
        "s02": make_chain(clips_dir, "s02", GREEN, [30]),
    }
    film = stitch(board, chains, tmp_path)
    frames = decode(film.path)
    overlap = round(0.5 * FPS)  # the storyboard's crossfade length

    assert len(frames) == 25 + 30 - overlap == film.num_frames

    # the middle of the overlap shows both shots at once (away from the moving bars)
    middle = frames[25 - overlap // 2]
    r, g, b = (float(c) for c in np.median(middle[:, :, :], axis=(0, 1)))
    assert 70 < r < 170 and 70 < g < 170 and b < 60, (r, g, b)

    # outside the re-encoded pieces every frame is the source's, bit for bit
    red, green = decode_chain(chains["s01"]), decode_chain(chains["s02"])
    _, red_last = copyable_range(chains["s01"], 0, overlap)
    green_first, _ = copyable_range(chains["s02"], overlap, 0)
    assert np.array_equal(frames[:red_last], red[:red_last])
    start2 = 25 - overlap
    assert np.array_equal(frames[start2 + green_first :], green[green_first:])
    assert red_last + (30 - green_first) >= 0.6 * len(frames)  # most of the film was copied
    # ... and the overlap itself is new: neither source frame
    assert not np.array_equal(middle, red[25 - overlap // 2])
    assert len(set(np.diff(frame_times(film.path)))) == 1  # evenly timed through the pieces


def test_fades_go_to_and_rise_from_black(clips_dir: Path, tmp_path: Path) -> None:
    board = make_board([(24, Transition.FADE), (24, Transition.FADE)], title_card=False)
    chains = {
        "s01": make_chain(clips_dir, "s01", RED, [24]),
        "s02": make_chain(clips_dir, "s02", BLUE, [24]),
    }
    film = stitch(board, chains, tmp_path)
    frames = decode(film.path)
    brightness = frames.reshape(len(frames), -1).mean(axis=1)
    fade = round(0.5 * FPS)

    assert len(frames) == 48  # fades dip to black inside each shot: no overlap
    # shot 1 falls to black, shot 2 rises from it, and the film ends on black
    assert brightness[23] < 8 and brightness[24] < 8 and brightness[-1] < 8
    assert all(np.diff(brightness[24 - fade : 24]) < 0)
    assert all(np.diff(brightness[24 : 24 + fade]) > 0)
    assert all(np.diff(brightness[-fade:]) < 0)
    assert brightness[12] > 80 and brightness[24 + fade + 2] > 80  # full brightness between


def drifting_frames(colour: tuple[int, int, int], n: int, phase: int = 0) -> list[np.ndarray]:
    """A soft colour pattern drifting 2 px a frame: calm enough that x264 opens the
    re-encoded pieces with B-frames, the case whose mp4 edit lists come out short."""
    yy, xx = np.mgrid[0:H, 0:W]
    frames = []
    for i in range(n):
        shade = 0.5 + 0.5 * np.sin((xx + 2 * (phase + i)) / 15.0) * np.cos(yy / 11.0)
        frames.append(np.clip(shade[..., None] * np.array(colour), 0, 255).astype(np.uint8))
    return frames


def test_timestamps_stay_regular_where_a_piece_meets_a_cut_clip(
    clips_dir: Path, tmp_path: Path
) -> None:
    """Regression: pieces whose length is not a whole number of milliseconds (7 and 11
    frames at 12 fps) came out of the mp4 muxer with an edit list a millisecond short, and
    the concat demuxer started the next file that much early: pts steps of 992 or 996
    instead of 1000 at each such join, and the film's frame rate read 12.0026."""
    import av

    lengths = [25, 29, 23, 31, 26]  # keyframes every 6 frames: copies start mid-clip
    board = make_board(
        [(n, Transition.CROSSFADE) for n in lengths[:-1]] + [(lengths[-1], Transition.CUT)],
        title_card=False,
    )
    colours = [RED, GREEN, BLUE, (200, 200, 40), (40, 200, 200)]
    chains = {
        shot.id: make_chain(clips_dir, shot.id, colour, [n], draw=drifting_frames)
        for shot, colour, n in zip(board.shots, colours, lengths)
    }
    timeline = film_timeline(board, {sid: c.num_frames for sid, c in chains.items()})
    sources = {
        sid: [ClipSource(c.path, c.num_frames, media.probe(c.path).keyframes) for c in ch.clips]
        for sid, ch in chains.items()
    }
    runs = plan_smart(timeline, sources)
    # one piece per crossfade, each followed by a copy cut out of the next clip's middle
    pieces = [run.frames for run in runs if isinstance(run, RenderRun)]
    assert pieces == [7, 11, 11, 7]  # 583.3 and 916.7 ms: not whole milliseconds
    assert all(isinstance(r, CopyRun) and r.first > 0 for r in runs[2::2])

    film = stitch(board, chains, tmp_path)
    assert "4 pieces re-encoded" in film.stitch_strategy

    # every frame is there, each one frame period after the one before
    times = frame_times(film.path)
    assert len(times) == timeline.total_frames == len(decode(film.path))
    assert times[0] == 0
    with av.open(str(film.path)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        ticks_per_frame = round(1 / (FPS * video.time_base))
        assert sorted(set(np.diff(times))) == [ticks_per_frame]
        assert video.average_rate == FPS
        # the sound ends with the picture, to within one AAC frame (1024 samples)
        picture = float(video.duration * video.time_base)
        sound = float(audio.duration * audio.time_base)
    assert picture == pytest.approx(timeline.total_frames / FPS)
    assert abs(sound - picture) <= 1024 / media.AUDIO_SAMPLE_RATE


def test_title_card_comes_first_for_its_planned_length(clips_dir: Path, tmp_path: Path) -> None:
    board = make_board([(24, Transition.CUT), (18, Transition.CUT)], title_card=True)
    chains = {
        "s01": make_chain(clips_dir, "s01", RED, [24]),
        "s02": make_chain(clips_dir, "s02", GREEN, [18]),
    }
    film = stitch(board, chains, tmp_path)
    timeline = film_timeline(board, {"s01": 24, "s02": 18})
    title = timeline.title_frames
    frames = decode(film.path)

    assert title == 3 * FPS and len(frames) == title + 24 + 18
    # the card: a dark frame with bright text on it, until it fades
    for card in frames[: title - timeline.title_fade]:
        assert np.median(card) < 40
        assert (card.max(axis=2) > 200).sum() > 30
    # right after the card the first shot starts at its own frame 0: from the first keyframe
    # after its fade-in the film is the clip's frames exactly (a longer or shorter card
    # would shift them)
    red = decode_chain(chains["s01"])
    first, _ = copyable_range(chains["s01"], timeline.placements[0].fade_in, 0)
    assert np.array_equal(frames[title + first : title + 24], red[first:])
    assert frames[title].mean() < 8  # the shot rises from black after the card


def test_title_card_that_would_not_join_is_redrawn_with_a_warning(
    clips_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    """If moviepy ever wrote the card with other H.264 settings, stream copy would break."""
    from moviepy import ImageClip

    from storyflow.stages import stitch as stitch_module
    from storyflow.stages.stills import title_card_frame

    def medium_preset_card(board, timeline, path):  # moviepy's own default preset
        card = ImageClip(title_card_frame(board)).with_duration(timeline.title_frames / FPS)
        card.write_videofile(str(path), fps=FPS, codec="libx264", audio=False, logger=None)

    monkeypatch.setattr(stitch_module, "_write_title_piece", medium_preset_card)
    board = make_board([(24, Transition.CUT)], title_card=True)
    chains = {"s01": make_chain(clips_dir, "s01", RED, [24])}
    with caplog.at_level(logging.WARNING, logger="storyflow.stages.stitch"):
        film = stitch(board, chains, tmp_path)

    assert any("title card" in r.getMessage() for r in caplog.records)
    assert "title card drawn with numpy" in film.stitch_strategy
    frames = decode(film.path)
    assert len(frames) == 3 * FPS + 24
    assert np.median(frames[0]) < 40 and (frames[0].max(axis=2) > 200).sum() > 30
    assert len(set(np.diff(frame_times(film.path)))) == 1


# ---------------------------------------------------------------- moviepy


def test_moviepy_strategy_makes_the_same_film(clips_dir: Path, tmp_path: Path) -> None:
    board = make_board(
        [(25, Transition.CROSSFADE), (31, Transition.FADE), (20, Transition.CUT)], title_card=True
    )
    chains = {
        "s01": make_chain(clips_dir, "s01", RED, [25]),
        "s02": make_chain(clips_dir, "s02", GREEN, [18, 13]),
        "s03": make_chain(clips_dir, "s03", BLUE, [20]),
    }
    smart = stitch(board, chains, tmp_path, "smart", out="smart")
    slow = stitch(board, chains, tmp_path, "moviepy", out="moviepy")

    a, b = decode(smart.path), decode(slow.path)
    timeline = film_timeline(board, {sid: c.num_frames for sid, c in chains.items()})
    assert len(a) == len(b) == timeline.total_frames == slow.num_frames
    assert b.shape[1:] == (H, W, 3)
    assert media.probe(slow.path).audio_codec == "aac"
    assert slow.stitch_strategy.startswith("moviepy")
    # frame for frame the same pictures (a one-frame slip would move the bars 5 px)
    p = timeline.placement("s03")
    body = slice(p.start + p.fade_in, p.end)
    diff = np.abs(a[body].astype(int) - b[body].astype(int)).mean(axis=(1, 2, 3))
    assert diff.max() < 4, diff
    assert np.abs(a.astype(int) - b.astype(int)).mean() < 6
    assert sorted(p.name for p in (tmp_path / "moviepy").iterdir()) == sorted(
        p.name for p in (slow.path, slow.subtitles, slow.poster, slow.contact_sheet)
    )


# ---------------------------------------------------------------- bad clips


def test_clip_of_wrong_size_is_normalised_with_a_warning(
    clips_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    board = make_board([(24, Transition.CUT), (24, Transition.CUT)], title_card=False)
    chains = {
        "s01": make_chain(clips_dir, "s01", RED, [24]),
        "s02": make_chain(clips_dir, "s02", GREEN, [24], size=(96, 54)),
    }
    with caplog.at_level(logging.WARNING, logger="storyflow.stages.stitch"):
        film = stitch(board, chains, tmp_path)

    warnings = [r.getMessage() for r in caplog.records if r.name == "storyflow.stages.stitch"]
    assert any("s02" in m and "96x54" in m for m in warnings), warnings
    frames = decode(film.path)
    assert frames.shape == (48, H, W, 3)
    assert np.array_equal(frames[:24], decode_chain(chains["s01"]))  # the good clip is untouched
    green = np.median(frames[24:], axis=(0, 1, 2))
    assert green[1] > 150 and green[0] < 90  # the normalised shot is still the green one
    assert "normalised" in film.stitch_strategy
    from PIL import Image

    assert Image.open(film.poster).size == (W, H)  # stills are at film size too


def test_short_sound_mix_is_padded_to_the_picture_with_a_warning(
    clips_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    board = make_board([(24, Transition.CUT), (24, Transition.CUT)], title_card=False)
    chains = {
        "s01": make_chain(clips_dir, "s01", RED, [24]),
        "s02": make_chain(clips_dir, "s02", GREEN, [24]),
    }
    t = np.arange(media.AUDIO_SAMPLE_RATE * 3) / media.AUDIO_SAMPLE_RATE  # 3 s for a 4 s film
    media.write_wav(tmp_path / "short.wav", 0.3 * np.sin(2 * np.pi * 220 * t))
    with caplog.at_level(logging.WARNING, logger="storyflow.stages.stitch"):
        film = stitch_film(
            board, chains, tmp_path / "short.wav", tmp_path / "film",
            storyboard_json=tmp_path / "storyboard.json",
        )  # fmt: skip

    assert any("padded" in r.getMessage() for r in caplog.records)
    sound = media.decode_audio(film.path)
    assert abs(len(sound) / media.AUDIO_SAMPLE_RATE - 4.0) < 0.05  # as long as the picture
    rate = media.AUDIO_SAMPLE_RATE
    assert np.sqrt(np.mean(sound[: 2 * rate] ** 2)) > 0.1  # the mix where it has sound
    assert np.sqrt(np.mean(sound[int(3.2 * rate) :] ** 2)) < 0.01  # silence after it


def test_missing_clip_is_an_error_that_names_the_fix(clips_dir: Path, tmp_path: Path) -> None:
    board = make_board([(24, Transition.CUT), (24, Transition.CUT)], title_card=False)
    chains = {
        "s01": make_chain(clips_dir, "s01", RED, [24]),
        "s02": make_chain(clips_dir, "s02", GREEN, [24]),
    }
    chains["s02"].clips[0].path.unlink()

    with pytest.raises(MediaError) as caught:
        stitch(board, chains, tmp_path)
    assert "s02" in caught.value.message and "missing" in caught.value.message
    assert caught.value.fix and "rerun" in caught.value.fix
    assert list((tmp_path / "film").iterdir()) == []  # no film, no scratch folder left


def test_unknown_strategy_is_rejected(clips_dir: Path, tmp_path: Path) -> None:
    board = make_board([(12, Transition.CUT)], title_card=False)
    chains = {"s01": make_chain(clips_dir, "s01", RED, [12])}
    with pytest.raises(InputError) as caught:
        stitch(board, chains, tmp_path, strategy="ffmpeg-filter")
    assert "smart" in caught.value.fix and "moviepy" in caught.value.fix


# ---------------------------------------------------------------- the plan, without encoding


def test_plan_never_makes_pieces_too_short_to_join() -> None:
    """At 4 fps a fade is 2 frames; the piece around it is widened to whole GOPs."""
    fps = 4
    board = Storyboard(
        title="t",
        slug="t",
        story_sha256="",
        style=StyleBible(style="s"),
        width=W,
        height=H,
        fps=fps,
        seed=0,
        title_card=False,
        shots=tuple(
            Shot(
                id=f"s{i}",
                index=i,
                beat=i,
                story_text="x",
                action="x",
                duration=4.0,
                transition=Transition.FADE,
            )
            for i in range(3)
        ),
    )
    gop = 2
    sources = {
        f"s{i}": [ClipSource(Path(f"s{i}.mp4"), 16, tuple(range(0, 16, gop)))] for i in range(3)
    }
    timeline = film_timeline(board, {sid: 16 for sid in sources})
    runs = plan_smart(timeline, sources)

    pieces = [r for r in runs if isinstance(r, RenderRun)]
    copies = [r for r in runs if isinstance(r, CopyRun)]
    # x264 gives pieces of 1-2 frames no B-frame delay: their timestamps would not line up
    assert MIN_PIECE_FRAMES == 3
    assert len(pieces) == 3 and all(r.frames >= 3 for r in pieces)
    assert sum(r.frames for r in runs) == timeline.total_frames == 48
    assert all(r.first % gop == 0 for r in copies)  # copies start on keyframes

    # a clip too short to be a piece of its own is never copied: it joins a re-encoded piece
    sources["s1"] = [
        ClipSource(Path("a.mp4"), 2, (0,)),
        ClipSource(Path("b.mp4"), 14, tuple(range(0, 14, gop))),
    ]
    runs = plan_smart(timeline, sources)
    assert all(r.path != Path("a.mp4") for r in runs if isinstance(r, CopyRun))
    assert all(r.frames >= 3 for r in runs if isinstance(r, RenderRun))
    assert sum(r.frames for r in runs) == 48
    # ... also in the middle of a shot, between two clips that are copied
    sources["s1"] = [
        ClipSource(Path("a.mp4"), 8, (0, 2, 4, 6)),
        ClipSource(Path("b.mp4"), 2, (0,)),
        ClipSource(Path("c.mp4"), 6, (0, 2, 4)),
    ]
    runs = plan_smart(timeline, sources)
    assert all(r.path != Path("b.mp4") for r in runs if isinstance(r, CopyRun))
    assert {r.path for r in runs if isinstance(r, CopyRun)} >= {Path("a.mp4"), Path("c.mp4")}
    assert all(r.frames >= 3 for r in runs if isinstance(r, RenderRun))
    # the runs tile the film: every re-encoded piece starts where the run before it ended
    cursor = 0
    for run in runs:
        if isinstance(run, RenderRun):
            assert run.start == cursor
        cursor += run.frames
    assert cursor == 48


def test_decode_range_gives_the_same_frames_as_decoding_from_the_start(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    media.write_video(path, shot_frames(RED, 31), W, H, FPS)  # keyframes every 6 frames
    everything = decode(path)
    for start, count in [(0, 4), (5, 3), (6, 6), (13, 10), (24, 7), (29, 5)]:
        frames = list(decode_range(path, start, count))
        expected = everything[start : start + count]
        assert len(frames) == len(expected)
        assert all(np.array_equal(a, b) for a, b in zip(frames, expected)), (start, count)


def test_subtitles_follow_given_cues_and_can_be_burned_in(clips_dir: Path, tmp_path: Path) -> None:
    from storyflow.stages.subtitles import Cue, parse_srt

    board = make_board([(24, Transition.CUT), (24, Transition.CUT)], title_card=False)
    chains = {
        "s01": make_chain(clips_dir, "s01", (40, 60, 90), [24]),
        "s02": make_chain(clips_dir, "s02", (90, 40, 40), [24]),
    }
    cues = [Cue(0.5, 1.5, "Spoken first"), Cue(2.5, 3.5, "Spoken second")]
    wav = make_mix(tmp_path / "mix.wav", board, chains)
    plain = stitch_film(board, chains, wav, tmp_path / "plain", storyboard_json=tmp_path / "s.json", cues=cues)
    burned = stitch_film(board, chains, wav, tmp_path / "burned", storyboard_json=tmp_path / "s.json", cues=cues,
                         burn_subtitles=True)  # fmt: skip
    assert [c[:2] for c in parse_srt(plain.subtitles)] == [(0.5, 1.5), (2.5, 3.5)]  # the speech's times
    a, b = decode(plain.path), decode(burned.path)
    assert len(a) == len(b) == 48
    assert burned.num_frames == 48 and media.probe(burned.path).audio_codec == "aac"
    band = slice(int(H * 0.6), int(H * 0.9))

    def changed(t: float) -> float:
        """How much burning changed the lower band of the frame at `t` (0-255 levels)."""
        k = int(t * FPS)
        return float(np.abs(b[k][band].astype(int) - a[k][band].astype(int)).mean())

    assert changed(1.0) > 10 and changed(3.0) > 10  # a box and text while each cue is up
    assert changed(2.0) < 2 and changed(3.9) < 2  # nothing between or after the cues
    assert "burned in" in burned.stitch_strategy
