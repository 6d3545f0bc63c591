# ftstudy for the target machines: DGX Spark (GB10, aarch64) and H100 hosts (x86_64).
#
# NVIDIA's PyTorch image is multi-arch, so the same file builds on both:
#   docker build -t ftstudy .                                   # on the machine itself (arm64 or amd64)
#   docker buildx build --platform linux/arm64,linux/amd64 -t ftstudy .
# Run (GPU, hub cache as a volume, results in the current folder):
#   docker run --gpus all --ipc=host -it --rm \
#     -v $HOME/.cache/huggingface:/home/ftstudy/.cache/huggingface \
#     -v $PWD/study:/home/ftstudy/study -w /home/ftstudy/study \
#     -e HF_TOKEN ftstudy ftstudy run tool_use --hardware dgx-spark
#
# It cannot be built on the project's CPU build machines (no Docker engine there); `ftstudy doctor` inside the
# container shows what was installed. The train and eval environments stay separate, as on any host: their pins
# conflict (Axolotl pins transformers/datasets/lm-eval; vLLM pins its own torch).
FROM nvcr.io/nvidia/pytorch:25.10-py3

ENV DEBIAN_FRONTEND=noninteractive \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    AXOLOTL_DO_NOT_TRACK=1 \
    HF_HOME=/home/ftstudy/.cache/huggingface \
    FTSTUDY_ENVS_DIR=/opt/ftstudy/envs \
    FTSTUDY_TRAIN_ENV=/opt/ftstudy/envs/train \
    FTSTUDY_EVAL_ENV=/opt/ftstudy/envs/eval \
    FTSTUDY_BFCL_ENV=/opt/ftstudy/envs/bfcl

RUN apt-get update && apt-get install -y --no-install-recommends git python3-venv chromium bubblewrap libseccomp2 \
    && rm -rf /var/lib/apt/lists/*

COPY ftstudy/core/tool_env_pins/ /opt/ftstudy/requirements/

# Train environment: the image's CUDA torch is reused (--system-site-packages) so that flash-attn and
# DeepSpeed build against it; Axolotl's other pins are installed on top. flash-attn wheels exist for x86_64;
# on aarch64 it compiles from source (long, but once per image).
RUN python -m venv --system-site-packages $FTSTUDY_TRAIN_ENV \
    && $FTSTUDY_TRAIN_ENV/bin/pip install --no-build-isolation -r /opt/ftstudy/requirements/train-gpu.txt \
    && touch $FTSTUDY_TRAIN_ENV/.ftstudy-complete

# Eval environment: vLLM brings its own torch, so this one does not inherit the image's packages.
RUN python -m venv $FTSTUDY_EVAL_ENV \
    && $FTSTUDY_EVAL_ENV/bin/pip install -r /opt/ftstudy/requirements/eval-gpu.txt \
    && touch $FTSTUDY_EVAL_ENV/.ftstudy-complete

# BFCL pins numpy 1.26: its own environment; it talks to the vLLM server of the eval environment.
RUN python -m venv $FTSTUDY_BFCL_ENV \
    && $FTSTUDY_BFCL_ENV/bin/pip install -r /opt/ftstudy/requirements/bfcl.txt \
    && touch $FTSTUDY_BFCL_ENV/.ftstudy-complete

# bigcode-evaluation-harness is not on PyPI: its source at the commit ftstudy is tested with (the project's
# ../shared/third_party archive holds the same tree), installed without its own deps on top of the pins.
ARG BIGCODE_COMMIT=8fc5bae6479c4fbbb28c3f8b644f6a15b3f3b5bd
RUN python -m venv /opt/ftstudy/envs/bigcode \
    && git init -q /opt/bigcode \
    && git -C /opt/bigcode fetch -q --depth 1 https://github.com/bigcode-project/bigcode-evaluation-harness ${BIGCODE_COMMIT} \
    && git -C /opt/bigcode checkout -q FETCH_HEAD \
    && /opt/ftstudy/envs/bigcode/bin/pip install -r /opt/ftstudy/requirements/bigcode-gpu.txt \
    && /opt/ftstudy/envs/bigcode/bin/pip install --no-deps -e /opt/bigcode \
    && touch /opt/ftstudy/envs/bigcode/.ftstudy-complete
ENV FTSTUDY_BIGCODE_ENV=/opt/ftstudy/envs/bigcode

# ftstudy itself: light, no torch.
COPY . /opt/ftstudy/src
RUN python -m venv /opt/ftstudy/core && /opt/ftstudy/core/bin/pip install -e /opt/ftstudy/src \
    && ln -s /opt/ftstudy/core/bin/ftstudy /usr/local/bin/ftstudy

RUN useradd --create-home --uid 1000 ftstudy && mkdir -p /home/ftstudy/.cache/huggingface /home/ftstudy/study \
    && chown -R ftstudy:ftstudy /home/ftstudy
USER ftstudy
WORKDIR /home/ftstudy/study
VOLUME ["/home/ftstudy/.cache/huggingface"]
CMD ["ftstudy", "doctor"]
