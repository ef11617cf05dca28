# ---
# jupyter:
#   accelerator: GPU
#   colab:
#     gpuType: T4
#     provenance: []
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 04 Train ESRGAN (RRDBNet, over the limit)
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/facesr-kit/facesr-kit/blob/main/notebooks/04_train_esrgan.ipynb)
#
# The report's "ESRGAN": the RRDBNet generator of ESRGAN (64 channels, 23 residual-in-residual dense
# blocks, growth 32) trained with the baseline's recipe (L1, full images, batch 8, Adam 2e-4, cosine
# restarts, 300k iterations; 2024/2025: BasicSR's settings and the second-order degradation), no
# discriminator yet. It has 16,697,987 parameters, 7-9x the limit of every edition: it cannot be submitted,
# it shows what capacity buys (29.16 dB against 28.90 dB for MSRResNet-16 in the 2022 report) and it is the
# starting point of the GAN fine-tune in notebook 05.
#
# Training checkpoints to `RUNS_DIR/esrgan` (on Colab a folder in your Drive) and **resumes by itself**:
# when the runtime is recycled, run the notebook again from the top and the training cell continues
# from the last checkpoint. Keep the settings the same when you resume (the trainer refuses a changed config).
# Quick mode uses 2 RRDB blocks instead of 23 (a CPU-size network, within the limit).

# %%
# Set-up, the same in every notebook: find the kit (opened from its badge: clone KIT_REPO at KIT_BRANCH, or update
# that clone), put its lib/ on the path; facesr.colab mounts Drive, links checkpoints/ into it, unpacks the data.
KIT_REPO = "https://github.com/facesr-kit/facesr-kit"  #@param {type:"string"}
KIT_BRANCH = "main"  #@param {type:"string"}
import os, subprocess, sys
KIT = next((os.path.abspath(p) for p in ("..", ".") if os.path.isdir(f"{p}/lib/facesr")), None)
if KIT is None:  # opened from its badge: the kit is cloned once beside it, and updated on every run of this cell
    KIT = os.environ.get("FACESR_KIT", "/content/facesr-kit")
    if not os.path.isdir(KIT):
        subprocess.run(["git", "clone", "-q", "-b", KIT_BRANCH, KIT_REPO, KIT], check=True)
    elif subprocess.run(["git", "-C", KIT, "pull", "-q", "--ff-only", KIT_REPO, KIT_BRANCH]).returncode:
        print(f"note: could not update {KIT} from {KIT_REPO} ({KIT_BRANCH}): local changes or another history; "
              "it is used as it is (delete that folder to clone afresh)")
sys.path.insert(0, f"{KIT}/lib")
from facesr.colab import setup_runtime
RUNTIME = setup_runtime(KIT)

# %% tags=["parameters"]
# Settings. Relative paths are relative to the kit. FACESR_QUICK=1, FACESR_DATA, FACESR_RUNS, FACESR_FIGURES override them.
DATA_ROOT = "data/FFHQ"  #@param {type:"string"}
RUNS_DIR = "checkpoints"  #@param {type:"string"}
FIGURES_DIR = ""  #@param {type:"string"}
QUICK = False  #@param {type:"boolean"}
EDITION = "project"  #@param ["project", "2022", "2023", "2024", "2025"]
ITERS = 0  #@param {type:"integer"}
BATCH_SIZE = 0  #@param {type:"integer"}
RUN_NAME = "esrgan"  #@param {type:"string"}
NUM_VAL_SHOW = 3  #@param {type:"integer"}
TRUST_CHECKPOINT = False  #@param {type:"boolean"}
# EDITION "project": your project's, saved on Drive (else what the data say); FIGURES_DIR "": the project's,
# MyDrive/facesr/figures/<edition>/ (without a Drive: figures/).
# 0 keeps the config's value (the table below prints it, quick mode's too). A smaller BATCH_SIZE helps when the
# GPU runs out of memory.
# TRUST_CHECKPOINT = True unpickles checkpoints in full, which runs code from the files: only for files from
# a trusted source that the safe (weights-only) load refuses.

# %%
from facesr.colab import resolve_settings
SETTINGS = resolve_settings(data_root=DATA_ROOT, runs_dir=RUNS_DIR, figures_dir=FIGURES_DIR, quick=QUICK,
                            edition=EDITION, notebook="04_train_esrgan")
print(SETTINGS)

# %% [markdown]
# ## 1. The config and the parameter budget
#
# Every setting of the run, then the generator's parameters against your edition's limit. Quick mode shrinks
# the run to CPU size; the table's last lines say how (from `facesr.config.quick_mode`).

# %%
from facesr.config import get_config
from facesr.report.steps import overrides, show_config
CFG = get_config("esrgan", quick=SETTINGS.quick, edition=SETTINGS.edition,
                 **overrides(iters=ITERS, batch_size=BATCH_SIZE))
show_config(CFG)

# %% [markdown]
# ## How long will it take?
#
# The run's first iterations timed on this runtime's device (its own data loader, degradation and step;
# nothing is saved), and what that speed means for the whole run: hours, and Colab sessions (a recycled
# runtime loses nothing: each new session resumes from `latest.pt`).

# %%
from facesr.training.speed import plan_run
print(plan_run(CFG, SETTINGS.data_root, SETTINGS.runs_dir / RUN_NAME))

# %% [markdown]
# ## 2. Train (re-running this cell resumes)
#
# The progress bar shows the loss, the learning rate and the last validation PSNR. Validation runs every
# `val_every` iterations on the whole validation set; `best.pt` keeps the best PSNR, `latest.pt` the
# last checkpoint. Interrupting the cell is safe: re-run it to continue.

# %%
from facesr.training import train
RUN_DIR = train(CFG, data_root=SETTINGS.data_root, runs_dir=SETTINGS.runs_dir, name=RUN_NAME,
                trust=TRUST_CHECKPOINT)

# %% [markdown]
# ## 3. Loss and PSNR curves
#
# Left: the L1 loss averaged over each logging window. Right: validation PSNR against iterations,
# with bicubic x4 as the floor to beat.

# %%
from facesr.report.steps import show_curves
fig = show_curves(RUN_DIR, SETTINGS.figures_dir, name="04_esrgan_curves")

# %% [markdown]
# ## 4. Validation outputs
#
# The best checkpoint on the first validation faces: LQ input, bicubic x4, the network's output and the
# ground truth, each with its PSNR.
#
# **In quick mode this picture is not a broken model.** RRDBNet has no image skip connection (MSRResNet adds
# the bilinearly upsampled input to its output; RRDBNet must produce every pixel itself), and MMEditing's
# init scales every conv by 0.1, so it starts from a near-black output. It learns luminance before colour:
# a quick-mode run (its length is the config table's, `facesr.config.quick_mode` says what it reaches on the sample
# data) draws a dark or sepia face well below bicubic, and it needs thousands of iterations to pass bicubic,
# which a GPU does in minutes. The full run ends far above it (29.16 dB in the 2022 report).

# %%
from facesr.report.steps import show_val_outputs
fig = show_val_outputs(RUN_DIR, SETTINGS.data_root, n=NUM_VAL_SHOW, figures_dir=SETTINGS.figures_dir,
                       name="04_esrgan_val_outputs", trust=TRUST_CHECKPOINT)

# %% [markdown]
# Next: notebook 05 fine-tunes this generator with a discriminator and a perceptual loss, and
# notebook 06 compares all runs.
