"""Electronic substrates: nonlinear resistive networks, memristor devices and crossbars."""

from .crossbar import AIHWKIT_PERIPHERY, CrossbarPeriphery, CrossbarTrueTwin, CrossbarTwin, MemristorCrossbarPlant
from .memristor import (HFOX_LI_2018, IDEAL_DEVICE, TAOX_YI_2023, LogTimeRelaxation, MemristorArray,
                        MemristorDevice)
from .resistive_network import (TYPICAL_MISMATCH, ResistiveMismatch, ResistiveNetworkPlant,
                                ResistiveNetworkTwin)

__all__ = ["AIHWKIT_PERIPHERY", "CrossbarPeriphery", "CrossbarTrueTwin", "CrossbarTwin", "HFOX_LI_2018",
           "IDEAL_DEVICE", "LogTimeRelaxation", "MemristorArray", "MemristorCrossbarPlant",
           "MemristorDevice", "ResistiveMismatch", "ResistiveNetworkPlant", "ResistiveNetworkTwin",
           "TAOX_YI_2023", "TYPICAL_MISMATCH"]
