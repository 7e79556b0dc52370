"""The two kinds of target task: classifying candidate cubes and segmenting volumes."""
