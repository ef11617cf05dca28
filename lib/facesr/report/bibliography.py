"""The report's references: the papers of the networks, losses and training methods a run used, as BibTeX.

Each entry was taken from its public source, named in ``source`` (the authors' repository or the
publisher's page); page numbers are given only where that source states them. :func:`run_citations` picks
the keys a run's ``config.json`` calls for; :func:`bibtex` writes ``references.bib``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from facesr.errors import FacesrError


@dataclass(frozen=True)
class BibEntry:
    """One BibTeX entry: its type, fields (BibTeX-escaped text) and where the data come from."""

    kind: str
    fields: tuple[tuple[str, str], ...]
    source: str


def _entry(kind: str, source: str, **fields: str) -> BibEntry:
    return BibEntry(kind, tuple(fields.items()), source)


BIBLIOGRAPHY: dict[str, BibEntry] = {
    "ledig2017srgan": _entry(
        "inproceedings", "https://openaccess.thecvf.com/content_cvpr_2017/html/Ledig_Photo-Realistic_Single_Image_CVPR_2017_paper.html",
        author="Ledig, Christian and Theis, Lucas and Husz{\\'a}r, Ferenc and Caballero, Jose and Cunningham, "
               "Andrew and Acosta, Alejandro and Aitken, Andrew and Tejani, Alykhan and Totz, Johannes and Wang, "
               "Zehan and Shi, Wenzhe",
        title="Photo-Realistic Single Image Super-Resolution Using a Generative Adversarial Network",
        booktitle="Proceedings of the IEEE Conference on Computer Vision and Pattern Recognition (CVPR)",
        pages="4681--4690", year="2017"),
    "wang2018esrgan": _entry(
        "inproceedings", "https://github.com/xinntao/ESRGAN (README, BibTeX); arXiv:1809.00219",
        author="Wang, Xintao and Yu, Ke and Wu, Shixiang and Gu, Jinjin and Liu, Yihao and Dong, Chao and Qiao, Yu "
               "and Loy, Chen Change",
        title="{ESRGAN}: Enhanced Super-Resolution Generative Adversarial Networks",
        booktitle="Proceedings of the European Conference on Computer Vision (ECCV) Workshops", year="2018"),
    "liang2021swinir": _entry(
        "inproceedings", "https://github.com/JingyunLiang/SwinIR (README, BibTeX); ICCV 2021 workshop proceedings",
        author="Liang, Jingyun and Cao, Jiezhang and Sun, Guolei and Zhang, Kai and Van Gool, Luc and Timofte, Radu",
        title="{SwinIR}: Image Restoration Using {Swin} Transformer",
        booktitle="Proceedings of the IEEE/CVF International Conference on Computer Vision (ICCV) Workshops",
        pages="1833--1844", year="2021"),
    "zhang2018rcan": _entry(
        "inproceedings", "https://github.com/yulunzhang/RCAN (README, BibTeX); ECCV 2018 proceedings",
        author="Zhang, Yulun and Li, Kunpeng and Li, Kai and Wang, Lichen and Zhong, Bineng and Fu, Yun",
        title="Image Super-Resolution Using Very Deep Residual Channel Attention Networks",
        booktitle="Proceedings of the European Conference on Computer Vision (ECCV)", pages="286--301", year="2018"),
    "wang2021realesrgan": _entry(
        "inproceedings", "https://github.com/xinntao/Real-ESRGAN (README, BibTeX); ICCV 2021 workshop proceedings",
        author="Wang, Xintao and Xie, Liangbin and Dong, Chao and Shan, Ying",
        title="{Real-ESRGAN}: Training Real-World Blind Super-Resolution with Pure Synthetic Data",
        booktitle="Proceedings of the IEEE/CVF International Conference on Computer Vision (ICCV) Workshops",
        pages="1905--1914", year="2021"),
    "charbonnier1994": _entry(
        "inproceedings", "https://doi.org/10.1109/ICIP.1994.413553",
        author="Charbonnier, Pierre and Blanc-F{\\'e}raud, Laure and Aubert, Gilles and Barlaud, Michel",
        title="Two Deterministic Half-Quadratic Regularization Algorithms for Computed Imaging",
        booktitle="Proceedings of the 1st International Conference on Image Processing (ICIP)", volume="2",
        pages="168--172", year="1994", doi="10.1109/ICIP.1994.413553"),
    "polyak1992averaging": _entry(
        "article", "https://doi.org/10.1137/0330046",
        author="Polyak, Boris T. and Juditsky, Anatoli B.",
        title="Acceleration of Stochastic Approximation by Averaging",
        journal="SIAM Journal on Control and Optimization", volume="30", number="4", pages="838--855", year="1992",
        doi="10.1137/0330046"),
    "kingma2015adam": _entry(
        "inproceedings", "https://arxiv.org/abs/1412.6980 (ICLR 2015)",
        author="Kingma, Diederik P. and Ba, Jimmy", title="Adam: A Method for Stochastic Optimization",
        booktitle="International Conference on Learning Representations (ICLR)", year="2015"),
    "loshchilov2017sgdr": _entry(
        "inproceedings", "https://arxiv.org/abs/1608.03983 (ICLR 2017)",
        author="Loshchilov, Ilya and Hutter, Frank", title="{SGDR}: Stochastic Gradient Descent with Warm Restarts",
        booktitle="International Conference on Learning Representations (ICLR)", year="2017"),
    "johnson2016perceptual": _entry(
        "inproceedings", "https://arxiv.org/abs/1603.08155 (ECCV 2016, Springer LNCS)",
        author="Johnson, Justin and Alahi, Alexandre and Fei-Fei, Li",
        title="Perceptual Losses for Real-Time Style Transfer and Super-Resolution",
        booktitle="Proceedings of the European Conference on Computer Vision (ECCV)", pages="694--711", year="2016"),
    "simonyan2015vgg": _entry(
        "inproceedings", "https://arxiv.org/abs/1409.1556 (ICLR 2015)",
        author="Simonyan, Karen and Zisserman, Andrew",
        title="Very Deep Convolutional Networks for Large-Scale Image Recognition",
        booktitle="International Conference on Learning Representations (ICLR)", year="2015"),
    "jolicoeur2019relativistic": _entry(
        "inproceedings", "https://openreview.net/forum?id=S1erHoR5t7 (ICLR 2019); arXiv:1807.00734",
        author="Jolicoeur-Martineau, Alexia",
        title="The Relativistic Discriminator: A Key Element Missing from Standard {GAN}",
        booktitle="International Conference on Learning Representations (ICLR)", year="2019"),
    "karras2019ffhq": _entry(
        "inproceedings", "https://openaccess.thecvf.com/content_CVPR_2019/html/Karras_A_Style-Based_Generator_Architecture_for_Generative_Adversarial_Networks_CVPR_2019_paper.html",
        author="Karras, Tero and Laine, Samuli and Aila, Timo",
        title="A Style-Based Generator Architecture for Generative Adversarial Networks",
        booktitle="Proceedings of the IEEE/CVF Conference on Computer Vision and Pattern Recognition (CVPR)",
        pages="4401--4410", year="2019"),
    "hinton2015distilling": _entry(
        "article", "https://arxiv.org/abs/1503.02531",
        author="Hinton, Geoffrey and Vinyals, Oriol and Dean, Jeff", title="Distilling the Knowledge in a Neural Network",
        journal="arXiv preprint arXiv:1503.02531", year="2015"),
    "wang2023omnisr": _entry(
        "inproceedings", "https://github.com/Francis0625/Omni-SR (README, BibTeX); arXiv:2304.10244",
        author="Wang, Hang and Chen, Xuanhong and Ni, Bingbing and Liu, Yutian and Liu, Jinfan",
        title="Omni Aggregation Networks for Lightweight Image Super-Resolution",
        booktitle="Proceedings of the IEEE/CVF Conference on Computer Vision and Pattern Recognition (CVPR)",
        year="2023"),
    "wan2024span": _entry(
        "inproceedings", "https://openaccess.thecvf.com/content/CVPR2024W/NTIRE/html/Wan_Swift_Parameter-free_Attention_Network_for_Efficient_Super-Resolution_CVPRW_2024_paper.html",
        author="Wan, Cheng and Yu, Hongyuan and Li, Zhiqi and Chen, Yihang and Zou, Yajun and Liu, Yuqing and Yin, "
               "Xuanwu and Zuo, Kunlong",
        title="Swift Parameter-free Attention Network for Efficient Super-Resolution",
        booktitle="Proceedings of the IEEE/CVF Conference on Computer Vision and Pattern Recognition (CVPR) Workshops",
        pages="6246--6256", year="2024"),
    "lee2024plksr": _entry(
        "article", "https://arxiv.org/abs/2404.11848",
        author="Lee, Dongheon and Yun, Seokju and Ro, Youngmin",
        title="Partial Large Kernel {CNNs} for Efficient Super-Resolution", journal="arXiv preprint arXiv:2404.11848",
        year="2024"),
    "chen2023dat": _entry(
        "inproceedings", "https://openaccess.thecvf.com/content/ICCV2023/html/Chen_Dual_Aggregation_Transformer_for_Image_Super-Resolution_ICCV_2023_paper.html",
        author="Chen, Zheng and Zhang, Yulun and Gu, Jinjin and Kong, Linghe and Yang, Xiaokang and Yu, Fisher",
        title="Dual Aggregation Transformer for Image Super-Resolution",
        booktitle="Proceedings of the IEEE/CVF International Conference on Computer Vision (ICCV)",
        pages="12312--12321", year="2023"),
    "zhang2024atd": _entry(
        "inproceedings", "https://openaccess.thecvf.com/content/CVPR2024/html/Zhang_Transcending_the_Limit_of_Local_Window_Advanced_Super-Resolution_Transformer_with_CVPR_2024_paper.html",
        author="Zhang, Leheng and Li, Yawei and Zhou, Xingyu and Zhao, Xiaorui and Gu, Shuhang",
        title="Transcending the Limit of Local Window: Advanced Super-Resolution Transformer with Adaptive Token "
              "Dictionary",
        booktitle="Proceedings of the IEEE/CVF Conference on Computer Vision and Pattern Recognition (CVPR)",
        pages="2856--2865", year="2024"),
}  # fmt: skip

# The papers of each generator of the registry (MSRResNet: SRResNet without BN, as ESRGAN's authors changed it;
# RealPLKSR: neosr's variant of PLKSR).
NETWORK_PAPERS: dict[str, tuple[str, ...]] = {
    "msrresnet": ("ledig2017srgan", "wang2018esrgan"),
    "msrresnet_basicsr": ("ledig2017srgan", "wang2018esrgan"),
    "rrdbnet": ("wang2018esrgan",),
    "swinir": ("liang2021swinir",),
    "rcan": ("zhang2018rcan",),
    "omnisr": ("wang2023omnisr",),
    "span": ("wan2024span",),
    "realplksr": ("lee2024plksr",),
    "dat": ("chen2023dat",),
    "atd": ("zhang2024atd",),
}


def distills(config: Mapping[str, object]) -> bool:
    """Whether a run's config adds the distillation term (a teacher and ``distill_weight`` > 0)."""
    return bool(config.get("teacher")) and float(config.get("distill_weight") or 0) > 0


def run_citations(config: Mapping[str, object], degradation: str = "course") -> list[str]:
    """The keys a run's config calls for: its network, losses (distillation too), optimiser, schedule, EMA and
    degradation.

    Args:
        config: the run's ``config.json`` (TrainConfig fields).
        degradation: the edition's degradation (``"second_order"`` cites Real-ESRGAN).
    """
    keys = list(NETWORK_PAPERS.get(str(config.get("generator")), ()))
    if str(config.get("pixel_loss", "l1")).lower() == "charbonnier":
        keys.append("charbonnier1994")
    if float(config.get("perceptual_weight") or 0) > 0:
        keys += ["johnson2016perceptual", "simonyan2015vgg"]
    if float(config.get("gan_weight") or 0) > 0:
        keys += ["jolicoeur2019relativistic", "wang2018esrgan"]
    if distills(config):
        keys.append("hinton2015distilling")
    keys.append("kingma2015adam")
    if str(config.get("scheduler", "")).startswith("cosine"):
        keys.append("loshchilov2017sgdr")
    if float(config.get("ema_decay") or 0) > 0:
        keys.append("polyak1992averaging")
    if degradation == "second_order":
        keys.append("wang2021realesrgan")
    return list(dict.fromkeys(keys))


def bibtex(keys: Iterable[str]) -> str:
    """``references.bib``: the entries of ``keys``, in that order, each with a comment naming its source.

    Raises:
        FacesrError: a key the bibliography does not hold.
    """
    out = []
    for key in dict.fromkeys(keys):
        if key not in BIBLIOGRAPHY:
            raise FacesrError(f"no reference {key!r} in facesr.report.bibliography; known: {', '.join(BIBLIOGRAPHY)}")
        entry = BIBLIOGRAPHY[key]
        fields = ",\n".join(f"  {name} = {{{value}}}" for name, value in entry.fields)
        out.append(f"% source: {entry.source}\n@{entry.kind}{{{key},\n{fields}\n}}\n")
    return "\n".join(out)
