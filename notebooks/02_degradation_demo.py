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
# # 02 The degradation, step by step
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/facesr-kit/facesr-kit/blob/main/notebooks/02_degradation_demo.ipynb)
#
# The course trains on pairs made on the fly: every 512x512 GT face goes through a random degradation to
# become its 128x128 LQ input. Which degradation depends on your edition (`EDITION` below):
#
# **2022 and 2023: the course degradation** (MMEditing), every step always applied, in this order:
# 1. blur with a 41x41 Gaussian kernel, isotropic or anisotropic (sigma x, y in [0.2, 5] px, any angle);
# 2. downscale by a factor in [1/16, 1] (bilinear, area or bicubic);
# 3. Gaussian noise, sigma in [0, 25] / 255;
# 4. JPEG at quality 50-95;
# 5. resize back to 512x512 (bilinear, area or bicubic);
# 6. round to 8 bits;
# 7. area resize to 128x128.
#
# **2024 and 2025: Real-ESRGAN's second-order degradation** (BasicSR): the GT is sharpened (unsharp mask),
# then two stages of blur (Gaussian, generalized, plateau or sinc kernels of 7-21 px), a random resize
# (up, down or keep), Gaussian or Poisson noise (colour or gray) and JPEG, then a final step that resizes to
# 128x128 with a sinc filter and compresses once more, in either order. The training target is the sharpened
# GT; validation and test compare with the plain one.
#
# Below: one face through every step, an interactive panel to try any setting, and how hard the task is
# for bicubic upscaling over many random degradations.

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
# Settings. Relative paths are relative to the kit. FACESR_QUICK=1, FACESR_DATA, FACESR_FIGURES override them.
DATA_ROOT = "data/FFHQ"  #@param {type:"string"}
FIGURES_DIR = ""  #@param {type:"string"}
QUICK = False  #@param {type:"boolean"}
FACE_INDEX = 0  #@param {type:"integer"}
SEED = 0  #@param {type:"integer"}
NUM_SAMPLES = 500  #@param {type:"integer"}
EDITION = "project"  #@param ["project", "2022", "2023", "2024", "2025"]
# EDITION "project": your project's, saved on Drive (else what the data say); FIGURES_DIR "": the project's,
# MyDrive/facesr/figures/<edition>/ (without a Drive: figures/).

# %%
from facesr.colab import resolve_settings
SETTINGS = resolve_settings(data_root=DATA_ROOT, figures_dir=FIGURES_DIR, quick=QUICK, edition=EDITION, notebook="02_degradation_demo")
print(SETTINGS)

# %% [markdown]
# ## 1. One face through every step
#
# The parameters are drawn exactly as in training; change `SEED` for another draw. Each kernel is drawn with
# its weights; the images keep their real size in pixels.

# %%
from facesr.data.images import list_images, read_image
from facesr.report.degradation_views import degradation_figure
from facesr.report.style import save_figure
FACE = list_images(SETTINGS.data_root / "val" / "GT")[FACE_INDEX]
GT = read_image(FACE)
fig, DRAW = degradation_figure(GT, SETTINGS.edition, seed=SEED)
print(f"{FACE.name}: {DRAW}")
print("saved", save_figure(fig, SETTINGS.figures_dir, "02_degradation_steps"))

# %% [markdown]
# ## 2. Try it yourself
#
# Move a slider or pick another option: the panel redraws the kernels, the LQ and its bicubic x4
# upscaling with the PSNR to the GT. "random sample" draws a new set of parameters like training does.
# (The noise pattern stays fixed, so a change in PSNR comes from the setting you moved.)

# %%
from facesr.report.degradation_views import degradation_panel
PANEL = degradation_panel(GT, SETTINGS.edition, seed=SEED)
PANEL

# %% [markdown]
# ## 3. How hard is it? Bicubic PSNR over random degradations
#
# The same face degraded many times with random parameters, each LQ upscaled with bicubic x4 and scored
# against the GT. The spread shows how much the difficulty varies between training pairs. The dashed line is
# the bicubic PSNR of this face's real validation LQ: if the validation set was made with the same pipeline,
# it should fall inside the histogram.

# %%
from facesr.metrics import bicubic_upscale, psnr
from facesr.report.degradation_views import bicubic_psnr_distribution
from facesr.report.explore import plot_psnr_histogram
n = min(NUM_SAMPLES, 20) if SETTINGS.quick else NUM_SAMPLES
VALUES = bicubic_psnr_distribution(GT, n, SETTINGS.edition, seed=SEED)
VAL_LQ_PSNR = psnr(bicubic_upscale(read_image(SETTINGS.data_root / "val" / "LQ" / FACE.name)), GT)
fig = plot_psnr_histogram(VALUES, {f"real val LQ of {FACE.name}": VAL_LQ_PSNR},
                          title=f"bicubic x4 over {n} random degradations of {FACE.name} ({SETTINGS.edition})")
print("saved", save_figure(fig, SETTINGS.figures_dir, "02_bicubic_psnr_histogram"))

# %% [markdown]
# ## 4. Does the training LQ look like the val LQ? The whole val set
#
# The course never said how its 2024/2025 val and test LQ were made. For every val pair the cell below measures
# the val LQ and `COMPARE_DRAWS` training LQ made from the same val GT by your edition's training pipeline:
# bicubic x4 PSNR, noise (Immerkaer's estimate), the equivalent Gaussian blur, sharpness (variance of the
# Laplacian), JPEG blockiness and the colour shift (`facesr.data.lq_statistics` documents each one and its
# source). The table gives the distance between the two distributions of each statistic (Wasserstein-1 over
# their pooled spread; `reference` is what val LQ made by this very pipeline would score with this many pairs).
# Change the training pipeline in `COMPARE_SET` with the spelling `train --set` takes (`course.<field>` for
# 2022/2023, `second_order.<field>` or `gt_usm` for 2024/2025, e.g. `gt_usm=false
# second_order.jpeg_range=[80,95]`): the setting with the lowest distance makes the training LQ most like the
# val LQ, and passes to training as it is. The same from a shell:
# `python -m facesr compare-degradation --data ROOT --edition YEAR --set ...`.

# %%
COMPARE_SET = ""  #@param {type:"string"}
COMPARE_LIMIT = 0  #@param {type:"integer"}
COMPARE_DRAWS = 4  #@param {type:"integer"}
# COMPARE_LIMIT = 0 compares every val pair (quick mode: 4); each second-order draw takes about 0.2 s on a CPU.
from facesr.report.degradation_match import show_degradation_match
MATCH = show_degradation_match(SETTINGS.data_root, SETTINGS.edition, COMPARE_SET.split(),
                               limit=COMPARE_LIMIT or (4 if SETTINGS.quick else None),
                               draws=2 if SETTINGS.quick else COMPARE_DRAWS, figures_dir=SETTINGS.figures_dir)

# %% [markdown]
# Next: notebook 03 trains the edition's baseline (MSRResNet with L1) on pairs made by this pipeline.
