"""The model artifact: booster, calibration, feature list and hash — saved, logged, loaded,
verified and turned into calibrated probabilities in one place (docs/design.md §2)."""
