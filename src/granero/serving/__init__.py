"""Online serving: the gRPC server (``server``, ``servicer``) and its Python ``client``.

Nothing is imported here, so ``granero.serving.config`` stays free of grpc; the whole serving
path is free of pyspark.
"""
