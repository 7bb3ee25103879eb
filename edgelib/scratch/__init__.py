"""Reference ("from scratch") implementations in NumPy.

Each chapter first builds an idea by hand, proves it equals TensorFlow, then
uses the version here; later chapters and the exercise checks reuse them.
One module per topic (mlp, optimizers, conv, rnn, attention, ...).
"""
