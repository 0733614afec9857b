"""The run directory: its layout, its writer and its reader."""
