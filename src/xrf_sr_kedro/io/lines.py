"""Emission-line energies from xraylib 4.3.0, for element names like ``Zn_K``.

A name is ``<symbol>_<family>`` with family ``K``, ``L`` or ``M`` (PyXRF style).
Each family is modelled by its strongest lines with their relative radiative
rates: K -> K-alpha1, K-alpha2, K-beta1; L -> L-alpha1, L-beta1; M -> M-alpha1.
The *principal* energy (the window centre) is the rate-weighted mean of the
alpha lines (``Zn_K`` -> 8.631 keV, the K-alpha energy); the full component list
feeds the least-squares fit of spectra (:mod:`.spectra`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

__all__ = ["EmissionLine", "emission_line", "parse_line_name"]

_FAMILIES = {
    "K": (("KA1_LINE", "KA2_LINE"), ("KB1_LINE",)),
    "L": (("LA1_LINE",), ("LB1_LINE",)),
    "M": (("MA1_LINE",), ()),
}


@dataclass(frozen=True)
class EmissionLine:
    """One element line family.

    Attributes
    ----------
    name : str
        ``Zn_K``.
    atomic_number : int
    energy_kev : float
        Principal (alpha) energy, keV.
    components : tuple of (energy_kev, relative_weight)
        Lines of the family with weights summing to 1.
    """

    name: str
    atomic_number: int
    energy_kev: float
    components: tuple[tuple[float, float], ...]


def parse_line_name(name: str) -> tuple[str, str]:
    """Split ``Zn_K`` into ``("Zn", "K")``; raise ValueError naming the expected form."""
    parts = str(name).split("_")
    if len(parts) != 2 or parts[1] not in _FAMILIES or not parts[0].isalpha():
        raise ValueError(
            f"element line {name!r}: expected '<symbol>_<K|L|M>' such as 'Zn_K', 'W_L', 'Pb_M'"
        )
    return parts[0], parts[1]


@lru_cache(maxsize=256)
def emission_line(name: str) -> EmissionLine:
    """Energies of the line family ``name`` (e.g. ``Zn_K``) from xraylib.

    Raises
    ------
    ValueError
        Malformed name, unknown element symbol, or a family the element does not emit.
    """
    import xraylib

    symbol, family = parse_line_name(name)
    try:
        z = int(xraylib.SymbolToAtomicNumber(symbol))
    except ValueError as exc:
        raise ValueError(f"element line {name!r}: unknown element symbol {symbol!r}") from exc
    alpha, beta = _FAMILIES[family]
    comps: list[tuple[float, float, bool]] = []
    for group, is_alpha in ((alpha, True), (beta, False)):
        for line in group:
            try:
                e = float(xraylib.LineEnergy(z, getattr(xraylib, line)))
                w = float(xraylib.RadRate(z, getattr(xraylib, line)))
            except ValueError:
                continue
            if e > 0 and w > 0:
                comps.append((e, w, is_alpha))
    alphas = [(e, w) for e, w, a in comps if a]
    if not alphas:
        raise ValueError(
            f"element line {name!r}: xraylib 4.3.0 has no {family} lines for {symbol} (Z={z})"
        )
    total = sum(w for _, w, _ in comps)
    principal = sum(e * w for e, w in alphas) / sum(w for _, w in alphas)
    return EmissionLine(
        name=str(name),
        atomic_number=z,
        energy_kev=principal,
        components=tuple((e, w / total) for e, w, _ in comps),
    )
