"""Tiny random LTX-Video and SkyReels-V2 folders, built offline and saved with save_pretrained.

They keep the real models' rules, so the backends are tested against them: the LTX VAE
compresses 32x in space and 8x in time (frames 8k+1, sizes multiples of 32), the Wan VAE
under SkyReels 8x and 4x (frames 4k+1, sizes multiples of 16). Every part is random and a
few kilobytes; a T5 tokenizer is trained here on a handful of sentences with `tokenizers`.
Each builder writes `folder` once and returns it (about 1 s each on two cores).
"""

from __future__ import annotations

from pathlib import Path

SENTENCES = [
    "A lighthouse keeper climbs the spiral stairs at dusk, lamp in hand.",
    "Waves break on the rocks below; the camera pans slowly to the right.",
    "Low quality, blurry, distorted, jittery, watermark, text.",
    "Mara walks along the pier in a red raincoat while gulls circle overhead.",
]


def _t5_tokenizer():
    """A small unigram T5-style tokenizer (pad 0, eos 1, unk 2), trained here."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    unigram = Tokenizer(models.Unigram())
    unigram.normalizer = normalizers.NFKC()
    unigram.pre_tokenizer = pre_tokenizers.Metaspace()
    unigram.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(vocab_size=120, special_tokens=["<pad>", "</s>", "<unk>"], unk_token="<unk>")
    unigram.train_from_iterator(SENTENCES, trainer)
    unigram.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=unigram, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")


def build_tiny_ltx(folder: Path) -> Path:
    """A tiny random LTXConditionPipeline folder (LTX-Video 0.9.x layout) for `--video-backend ltx`."""
    import torch
    from diffusers import (
        AutoencoderKLLTXVideo,
        FlowMatchEulerDiscreteScheduler,
        LTXConditionPipeline,
        LTXVideoTransformer3DModel,
    )
    from transformers import T5Config, T5EncoderModel

    folder = Path(folder)
    if (folder / "model_index.json").is_file():
        return folder
    torch.manual_seed(0)
    tokenizer = _t5_tokenizer()
    text_encoder = T5EncoderModel(T5Config(vocab_size=len(tokenizer), d_model=32, d_kv=8, d_ff=32, num_layers=1,
                                           num_heads=4, relative_attention_num_buckets=8, pad_token_id=0,
                                           eos_token_id=1, decoder_start_token_id=0))  # fmt: skip
    transformer = LTXVideoTransformer3DModel(in_channels=8, out_channels=8, patch_size=1, patch_size_t=1,
                                             num_attention_heads=2, attention_head_dim=8, cross_attention_dim=16,
                                             num_layers=1, caption_channels=32)  # fmt: skip
    # the real VAE's compression: patch 4 x three 2x scalings = 32 in space, three 2x scalings = 8 in time
    vae = AutoencoderKLLTXVideo(in_channels=3, out_channels=3, latent_channels=8, block_out_channels=(8, 8, 8, 8),
                                decoder_block_out_channels=(8, 8, 8, 8), layers_per_block=(1, 1, 1, 1, 1),
                                decoder_layers_per_block=(1, 1, 1, 1, 1),
                                spatio_temporal_scaling=(True, True, True, False),
                                decoder_spatio_temporal_scaling=(True, True, True, False),
                                decoder_inject_noise=(False, False, False, False, False),
                                upsample_residual=(False, False, False, False), upsample_factor=(1, 1, 1, 1),
                                timestep_conditioning=False, patch_size=4, patch_size_t=1)  # fmt: skip
    # dynamic shifting needs `mu`, which LTXConditionPipeline does not pass (ARCHITECTURE.md section 8)
    scheduler = FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=False)
    pipe = LTXConditionPipeline(scheduler=scheduler, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                                transformer=transformer)  # fmt: skip
    pipe.save_pretrained(folder)
    return folder


def build_tiny_skyreels(folder: Path) -> Path:
    """A tiny random SkyReels-V2 diffusion-forcing folder (the DF layout) for `--video-backend skyreels`."""
    import torch
    from diffusers import (
        AutoencoderKLWan,
        SkyReelsV2DiffusionForcingPipeline,
        SkyReelsV2Transformer3DModel,
        UniPCMultistepScheduler,
    )
    from transformers import UMT5Config, UMT5EncoderModel

    folder = Path(folder)
    if (folder / "model_index.json").is_file():
        return folder
    torch.manual_seed(0)
    tokenizer = _t5_tokenizer()
    text_encoder = UMT5EncoderModel(UMT5Config(vocab_size=len(tokenizer), d_model=32, d_kv=8, d_ff=32, num_layers=1,
                                               num_heads=4, relative_attention_num_buckets=8, pad_token_id=0,
                                               eos_token_id=1, decoder_start_token_id=0))  # fmt: skip
    transformer = SkyReelsV2Transformer3DModel(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12,
                                               in_channels=16, out_channels=16, text_dim=32, freq_dim=32, ffn_dim=32,
                                               num_layers=1, cross_attn_norm=True, qk_norm="rms_norm_across_heads",
                                               rope_max_seq_len=32)  # fmt: skip
    # the Wan VAE's compression: 8 in space, 4 in time
    vae = AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                           temperal_downsample=[False, True, True])  # fmt: skip
    scheduler = UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=8.0)
    pipe = SkyReelsV2DiffusionForcingPipeline(tokenizer=tokenizer, text_encoder=text_encoder, transformer=transformer,
                                              vae=vae, scheduler=scheduler)  # fmt: skip
    pipe.save_pretrained(folder)
    return folder
