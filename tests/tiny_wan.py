"""Tiny random Wan pipelines, built offline and saved with save_pretrained, loaded back the way a user's are.

Each folder has a real Wan layout (model_index.json, transformer/, vae/, text_encoder/,
tokenizer/, scheduler/), a few hundred KB of random weights, and a WordLevel tokenizer
trained here on a few sentences (UMT5's SentencePiece model cannot be downloaded).

    build_tiny_wan_t2v(folder)                    Wan 2.1 text-to-video (WanPipeline)
    build_tiny_wan_i2v(folder)                    Wan 2.2 A14B image-to-video: two transformers,
                                                  boundary_ratio, no image encoder; takes last_image
    build_tiny_wan_i2v(folder, layout="wan2.1")   Wan 2.1 image-to-video with a CLIP image encoder;
                                                  takes the first frame only
    build_tiny_wan_i2v(folder, layout="flf2v")    Wan 2.1 first-last-frame: CLIP embeddings of both
                                                  frames; needs the last frame every time
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

TEXT_DIM = 32  # the tiny UMT5's width, which the transformer's text projection reads
LATENT_CHANNELS = 16  # the tiny VAE's z_dim (its default latents_mean/std have 16 entries)
SENTENCES = [
    "a lighthouse on a cliff at dusk, waves breaking below, slow push in",
    "Mara walks along the pier in a red raincoat, gulls overhead",
    "blurry, low quality, static, distorted, watermark, text",
]


def _tokenizer():
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    words = Tokenizer(models.WordLevel(unk_token="<unk>"))
    words.normalizer = normalizers.Lowercase()
    words.pre_tokenizer = pre_tokenizers.Whitespace()
    words.train_from_iterator(SENTENCES, trainers.WordLevelTrainer(special_tokens=["<pad>", "</s>", "<unk>"]))
    words.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=words, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")


def _common(seed: int):
    """The parts every Wan layout shares: VAE, text encoder, tokenizer, scheduler."""
    import torch
    from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler
    from transformers import UMT5Config, UMT5EncoderModel

    torch.manual_seed(seed)
    tokenizer = _tokenizer()
    text_encoder = UMT5EncoderModel(UMT5Config(vocab_size=len(tokenizer), d_model=TEXT_DIM, d_kv=8, d_ff=32,
                                               num_layers=1, num_heads=4, relative_attention_num_buckets=8,
                                               pad_token_id=0, eos_token_id=1, decoder_start_token_id=0))  # fmt: skip
    vae = AutoencoderKLWan(base_dim=3, z_dim=LATENT_CHANNELS, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                           temperal_downsample=[False, True, True])  # fmt: skip
    scheduler = FlowMatchEulerDiscreteScheduler(shift=3.0)
    return {"tokenizer": tokenizer, "text_encoder": text_encoder, "vae": vae, "scheduler": scheduler}


def _transformer(in_channels: int, image_dim: int | None = None, pos_embed_seq_len: int | None = None):
    from diffusers import WanTransformer3DModel

    return WanTransformer3DModel(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=8,
                                 in_channels=in_channels, out_channels=LATENT_CHANNELS, text_dim=TEXT_DIM,
                                 freq_dim=32, ffn_dim=32, num_layers=1, image_dim=image_dim,
                                 rope_max_seq_len=32, pos_embed_seq_len=pos_embed_seq_len)  # fmt: skip


def build_tiny_wan_t2v(folder: Path) -> Path:
    """A tiny random Wan 2.1 text-to-video pipeline saved into `folder` (loads with WanPipeline)."""
    from diffusers import WanPipeline

    parts = _common(seed=0)
    pipe = WanPipeline(transformer=_transformer(LATENT_CHANNELS), **parts)
    pipe.save_pretrained(folder)
    return Path(folder)


def build_tiny_wan_i2v(folder: Path, layout: Literal["wan2.2", "wan2.1", "flf2v"] = "wan2.2") -> Path:
    """A tiny random Wan image-to-video pipeline saved into `folder` (loads with WanImageToVideoPipeline).

    "wan2.2": the A14B layout (two transformers, boundary_ratio, no image encoder): first and last frame.
    "wan2.1": the 14B-480P layout with a CLIP image encoder: first frame only.
    "flf2v": the Wan 2.1 FLF2V layout (CLIP, position embeddings for two images): first and last frame, always.
    """
    import torch
    from diffusers import WanImageToVideoPipeline

    parts = _common(seed=1)
    in_channels = LATENT_CHANNELS + 4 + LATENT_CHANNELS  # noise, the frame mask, the encoded given frames
    if layout == "wan2.2":
        pipe = WanImageToVideoPipeline(transformer=_transformer(in_channels), transformer_2=_transformer(in_channels),
                                       boundary_ratio=0.875, **parts)  # fmt: skip
    elif layout in ("wan2.1", "flf2v"):
        from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel

        torch.manual_seed(2)
        encoder = CLIPVisionModel(CLIPVisionConfig(hidden_size=8, intermediate_size=16, projection_dim=8,
                                                   num_hidden_layers=2, num_attention_heads=2, image_size=32,
                                                   patch_size=8))  # fmt: skip
        processor = CLIPImageProcessor(crop_size=32, size={"shortest_edge": 32})
        tokens = (32 // 8) ** 2 + 1  # CLIP's patches and its class token, per image
        both = 2 * tokens if layout == "flf2v" else None
        pipe = WanImageToVideoPipeline(transformer=_transformer(in_channels, image_dim=8, pos_embed_seq_len=both),
                                       image_encoder=encoder, image_processor=processor, **parts)  # fmt: skip
    else:
        raise ValueError(f"unknown layout {layout!r}: wan2.2, wan2.1 or flf2v")
    pipe.save_pretrained(folder)
    return Path(folder)
