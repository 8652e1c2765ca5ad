#!/usr/bin/env python3
"""predictions_v1 launcher template for any Hugging Face transformers audio-language model.

    python3 launchers/hf_transformers/serve.py --model-id Qwen/Qwen2-Audio-7B-Instruct --port 8000

This file is the whole kit; to add a model, copy the directory (see README.md next to this
file). What a new model usually needs:

  NAME / MODEL_ID      the kit's directory name and the default Hugging Face repo;
  add_arguments()      defaults: audio cap, most new tokens, the model class when config.json
                       does not name one transformers knows ('auto' reads it from config.json);
  Model(...)           a subclass of TransformersAudioModel overriding only what differs:
                         conversation(item)     how messages and audio placeholders become a
                                                chat conversation (default: a {"type": "audio"}
                                                part where each placeholder was);
                         processor_inputs(...)  the processor's keyword names (default text=,
                                                audio=, sampling_rate=);
                         generate_kwargs(item)  decoding (default greedy, temperature from the
                                                request, max_tokens honoured);
  requirements.txt     the pins the model card asks for.

HF_TRANSFORMERS_STUB=1 answers deterministically without any model.
"""

import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "_common"))

import predictions_server as ps  # noqa: E402
import transformers_model as tm  # noqa: E402

NAME = "hf_transformers"
MODEL_ID = "Qwen/Qwen2-Audio-7B-Instruct"


class Model(tm.TransformersAudioModel):
    """The model as this kit serves it. Qwen2-Audio needs nothing beyond the defaults; a model
    whose processor names its audio argument differently overrides processor_inputs, e.g.

        def processor_inputs(self, prompts, audios):
            return self.processor(text=prompts, audios=audios, sampling_rate=self.sample_rate,
                                  return_tensors="pt", padding=True)
    """


def add_arguments(g):
    tm.add_arguments(g, model_id=MODEL_ID, env_prefix="HF_TRANSFORMERS", cap_seconds=30.0, max_new_tokens=256)


KIT = ps.Kit(
    name=NAME,
    description="Serve a Hugging Face transformers audio-language model over predictions_v1 (template kit).",
    stub_model_id=lambda args: args.model_id,
    make_model=lambda args: Model(NAME, args),
    add_arguments=add_arguments,
    default_max_batch_size=4,
    stub_extra=lambda args: {"generation": tm.generation_extra(args)},
)

if __name__ == "__main__":
    sys.exit(KIT.main())
