"""Reading and writing scans; intensity presets.

``read_volume`` reads NIfTI, MetaImage, NRRD, .npy and DICOM series into a :class:`Volume`
(array in (x, y, z) order, ITK geometry); ``write_nifti``/``write_npy`` write atomically;
``normalize_intensity``/``detect_modality`` map raw values to [0, 1] (CT HU window, MR
percentiles); ``resample_volume`` changes the voxel spacing (optional; the reference keeps
native spacing).
"""

from semantic_genesis.io.intensity import detect_modality, normalize_intensity
from semantic_genesis.io.itk import resample_volume
from semantic_genesis.io.readers import read_volume
from semantic_genesis.io.volume import Volume
from semantic_genesis.io.writers import write_nifti, write_npy

__all__ = [
    "Volume",
    "detect_modality",
    "normalize_intensity",
    "read_volume",
    "resample_volume",
    "write_nifti",
    "write_npy",
]
