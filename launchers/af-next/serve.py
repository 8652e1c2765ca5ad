#!/usr/bin/env python3
"""predictions_v1 launcher for Audio Flamingo Next (NVIDIA).

    python3 launchers/af-next/serve.py --host 0.0.0.0 --port 8000 [--token-file F]

Weights: the Hugging Face repo nvidia/audio-flamingo-next-hf (--model-id / AF_NEXT_MODEL_ID),
loaded with transformers' AutoProcessor and the model class its config.json names.
AF_NEXT_STUB=1 answers deterministically without any model. See README.md next to this file.
"""

import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "_common"))

import predictions_server as ps  # noqa: E402
import transformers_model as tm  # noqa: E402

NAME = "af-next"
MODEL_ID = "nvidia/audio-flamingo-next-hf"


def add_arguments(g):
    # Audio Flamingo Next takes long audio; BEANS-Next caps it at 30 s (registry af_next_local_8000).
    tm.add_arguments(g, model_id=MODEL_ID, env_prefix="AF_NEXT", cap_seconds=30.0, max_new_tokens=300)


KIT = ps.Kit(
    name=NAME,
    description="Serve Audio Flamingo Next (NVIDIA) over predictions_v1 with transformers.",
    stub_model_id=lambda args: args.model_id,
    make_model=lambda args: tm.TransformersAudioModel(NAME, args),
    add_arguments=add_arguments,
    default_max_batch_size=4,
    stub_extra=lambda args: {"generation": tm.generation_extra(args)},
)

if __name__ == "__main__":
    sys.exit(KIT.main())
