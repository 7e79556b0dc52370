"""What the comparison methods of the paper's Table 2 share (method.md §3.4): a restoring
method titled by its own name while it perturbs as its paper does, and a method whose labels
come from its own perturbation, which therefore takes no other preset."""

from __future__ import annotations

from semantic_genesis.pretrain.methods.base import Method
from semantic_genesis.pretrain.methods.restoration import Restoring
from semantic_genesis.utils.errors import SemgenError


class RestoringComparison(Restoring):
    """A restoring comparison method: ``title`` while it uses its own perturbation, else
    ``restoration (<preset>)`` (``--preset`` gives the restoration ablation)."""

    @property
    def label(self) -> str:
        """``title`` under the method's own perturbation, else the restoration label."""
        own = type(self).perturbation
        return self.title if self.perturbation is own or self.perturbation == own else (
            super().label)


class LabelledPretext(Method):
    """A method that predicts what its perturbation did (rotation, Rubik's cube): the labels
    exist only under its own perturbation, so ``--preset`` is refused."""

    def with_preset(self, preset: str) -> Method:
        """Refused: the labels come from this method's own perturbation."""
        raise SemgenError(f"--preset {preset}: {self.name} predicts what its own perturbation "
                          "did; it takes no other preset")
