"""One module per `semgen` verb: ``add_arguments(parser)`` and ``run(args) -> int``.

Command modules only parse arguments and call the library; the work lives in the stage packages.
"""
