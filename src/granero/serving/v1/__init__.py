"""Generated from protos/granero/serving/v1 by the build (hatch_build.py); never edit by hand."""
