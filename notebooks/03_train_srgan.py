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
# # 03 Train SRGAN (the course baseline)
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/facesr-kit/facesr-kit/blob/main/notebooks/03_train_srgan.ipynb)
#
# The course baseline of your edition, called "SRGAN" in the original report: MSRResNet with 16 residual
# blocks (1,517,571 parameters), L1 loss, full 128x128 -> 512x512 images, batch 8, Adam 2e-4 with cosine
# restarts, 300k iterations. In 2022 and 2023 it is MMEditing's MSRResNet on the course degradation; in 2024 and
# 2025 BasicSR's (a LeakyReLU after each pixel shuffle) on Real-ESRGAN's second-order degradation, with EMA
# weights, as the course's code trained it. The config table prints every setting, the budget line the count
# against your edition's limit, and notebook 01 the baseline score the handout gives.
#
# Training checkpoints to `RUNS_DIR/srgan` (on Colab a folder in your Drive) and **resumes by itself**:
# when the runtime is recycled, run the notebook again from the top and the training cell continues
# from the last checkpoint. Keep the settings the same when you resume (the trainer refuses a changed config).

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
RUN_NAME = "srgan"  #@param {type:"string"}
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
                            edition=EDITION, notebook="03_train_srgan")
print(SETTINGS)

# %% [markdown]
# ## 1. The config and the parameter budget
#
# Every setting of the run, then the generator's parameters against your edition's limit. Quick mode shrinks
# the run to CPU size; the table's last lines say how (from `facesr.config.quick_mode`).

# %%
from facesr.config import get_config
from facesr.report.steps import overrides, show_config
CFG = get_config("srgan", quick=SETTINGS.quick, edition=SETTINGS.edition,
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
fig = show_curves(RUN_DIR, SETTINGS.figures_dir, name="03_srgan_curves")

# %% [markdown]
# ## 4. Validation outputs
#
# The best checkpoint on the first validation faces: LQ input, bicubic x4, the network's output and the
# ground truth, each with its PSNR.

# %%
from facesr.report.steps import show_val_outputs
fig = show_val_outputs(RUN_DIR, SETTINGS.data_root, n=NUM_VAL_SHOW, figures_dir=SETTINGS.figures_dir,
                       name="03_srgan_val_outputs", trust=TRUST_CHECKPOINT)

# %% [markdown]
# Next: notebook 04 trains the larger RRDBNet ("ESRGAN" in the report) with the same recipe, and
# notebook 06 compares all runs.
