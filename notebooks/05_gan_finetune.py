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
# # 05 GAN fine-tune (ESRGAN with discriminator)
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/facesr-kit/facesr-kit/blob/main/notebooks/05_gan_finetune.ipynb)
#
# The report's "ESRGAN (discriminator)": MMEditing's ESRGAN recipe on top of notebook 04's RRDBNet.
# The generator loss is L1 (weight 0.01) + VGG19 conv5_4 perceptual loss (weight 1) + relativistic
# average GAN loss (weight 0.005) from a ModifiedVGG discriminator on 128x128 GT crops; Adam 1e-4 for
# both networks, learning rate halved at 50k, 100k, 200k and 300k of 400k iterations (2024/2025: BasicSR's
# Adam betas and EMA weights, on the second-order degradation). Together the three networks hold 51,221,772
# parameters. Expect sharper faces but a *lower* PSNR than notebook 04:
# the GAN trades pixel accuracy for texture.
#
# **It starts from notebook 04's run** (`RUNS_DIR/esrgan`). To start from another generator, set
# `INIT_FROM` to its run folder or `.pt` file (an RRDBNet 64/23/32; MMEditing, BasicSR and original
# ESRGAN weight files are recognised too). Like 03 and 04 it checkpoints to `RUNS_DIR/esrgan_gan` and
# resumes by itself when re-run.
#
# The perceptual loss needs torchvision's ImageNet VGG19 weights (`vgg19-dcbb9e9d.pth`, downloaded once
# into torch's cache; Colab has internet). Offline, set `VGG_WEIGHTS` to a local copy of that file.

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
INIT_FROM = ""  #@param {type:"string"}
VGG_WEIGHTS = ""  #@param {type:"string"}
ITERS = 0  #@param {type:"integer"}
BATCH_SIZE = 0  #@param {type:"integer"}
RUN_NAME = "esrgan_gan"  #@param {type:"string"}
NUM_VAL_SHOW = 3  #@param {type:"integer"}
TRUST_CHECKPOINT = False  #@param {type:"boolean"}
# EDITION "project": your project's, saved on Drive (else what the data say); FIGURES_DIR "": the project's,
# MyDrive/facesr/figures/<edition>/ (without a Drive: figures/).
# INIT_FROM = "" starts from RUNS_DIR/esrgan (notebook 04). VGG_WEIGHTS = "" keeps the config's
# ("imagenet"; "random" in quick mode). ITERS/BATCH_SIZE = 0 keep the config's (the table below prints them).
# TRUST_CHECKPOINT = True unpickles checkpoints in full (INIT_FROM's too), which runs code from the files:
# only for files from a trusted source that the safe (weights-only) load refuses.

# %%
from facesr.colab import resolve_settings
SETTINGS = resolve_settings(data_root=DATA_ROOT, runs_dir=RUNS_DIR, figures_dir=FIGURES_DIR, quick=QUICK,
                            edition=EDITION, notebook="05_gan_finetune")
print(SETTINGS)

# %% [markdown]
# ## 1. The starting point
#
# A fresh run initialises its generator from this run or file; a run that already has checkpoints resumes
# from its own. If the starting point is missing, the cell says how to make it or where to point `INIT_FROM`.

# %%
from facesr.report.steps import resolve_init
INIT = resolve_init(INIT_FROM, SETTINGS.runs_dir, default="esrgan", run_name=RUN_NAME)

# %% [markdown]
# ## 2. The config and the parameter budget
#
# The count below is the generator's; the discriminator (14,499,401) and the frozen VGG19 features
# (20,024,384) only exist during training and are not held to the limit. Quick mode's changes are the table's
# last lines (from `facesr.config.quick_mode`).

# %%
from facesr.config import get_config
from facesr.report.steps import overrides, show_config
CFG = get_config("esrgan_gan", quick=SETTINGS.quick, edition=SETTINGS.edition,
                 **overrides(iters=ITERS, batch_size=BATCH_SIZE, vgg_weights=VGG_WEIGHTS))
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
# ## 3. Train (re-running this cell resumes)
#
# The progress bar shows the pixel loss, the learning rate and the last validation PSNR; the log keeps
# every term: `l_pix`, `l_percep`, `l_g_gan` for the generator, `l_d_real` and `l_d_fake` for the
# discriminator.

# %%
from facesr.training import train
RUN_DIR = train(CFG, data_root=SETTINGS.data_root, runs_dir=SETTINGS.runs_dir, name=RUN_NAME, init=INIT,
                trust=TRUST_CHECKPOINT)

# %% [markdown]
# ## 4. Loss and PSNR curves
#
# A healthy GAN run keeps `l_d_real` and `l_d_fake` near 0.35 (0.5 * ln 2, a discriminator that cannot
# tell): one falling to 0 means the discriminator has won and the generator learns nothing useful.

# %%
from facesr.report.steps import show_curves
fig = show_curves(RUN_DIR, SETTINGS.figures_dir, name="05_esrgan_gan_curves")

# %% [markdown]
# ## 5. Validation outputs
#
# The best checkpoint (by PSNR) on the first validation faces beside LQ, bicubic and GT. Look at hair,
# skin and teeth rather than at the PSNR in the titles.
#
# In quick mode the faces are dark or sepia and below bicubic, and that is expected: the fine-tune starts
# from notebook 04's quick RRDBNet, which has no image skip connection and MMEditing's 0.1-scaled init, so
# it starts from a near-black output, learns luminance before colour and needs thousands of iterations to
# reach bicubic (minutes on a GPU). A few dozen GAN iterations on a CPU cannot fix that; on the full run the
# GAN starts from a 29 dB generator and trades a little of its PSNR for texture.

# %%
from facesr.report.steps import show_val_outputs
fig = show_val_outputs(RUN_DIR, SETTINGS.data_root, n=NUM_VAL_SHOW, figures_dir=SETTINGS.figures_dir,
                       name="05_esrgan_gan_val_outputs", trust=TRUST_CHECKPOINT)

# %% [markdown]
# Next: notebook 06 puts this run beside 03 and 04 and writes the report's figures and tables.
