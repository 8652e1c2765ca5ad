#!/usr/bin/env python3
"""predictions_v1 launcher for NatureLM-audio v1.1 (Earth Species Project).

    python3 launchers/naturelm-v1.1/serve.py --host 0.0.0.0 --port 8001 [--token-file F]

Weights: a gated Hugging Face repo (HF_TOKEN; --model-id / NATURELM_MODEL_ID, default
EarthSpeciesProject/NatureLM-audio-v1.1), or a checkpoint directory given by
NATURELM_GCS_CHECKPOINT_URI. NATURELM_V1_1_STUB=1 answers deterministically without any model.
See README.md next to this file.
"""

import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "_common"))

import naturelm  # noqa: E402

KIT = naturelm.make_kit(
    "naturelm-v1.1",
    "EarthSpeciesProject/NatureLM-audio-v1.1",
    "Serve NatureLM-audio v1.1 over predictions_v1 (BEANS-Zero recipe: 16 kHz, 10 s cap, Llama-3.1 template, 2 beams).",
)

if __name__ == "__main__":
    sys.exit(KIT.main())
