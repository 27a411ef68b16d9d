package dev.gosling.trainer.backend;

/** Elementwise activations used inside the RWKV-7 LoRA chains (rwkv7-reference.md §6.4). */
public enum Activation {
    NONE,
    /** Used after xw·w1 in the decay chain. */
    TANH,
    /** Used after xg·g1 in the gate chain, and on a0+… and v0+… for α and the value-residual gate. */
    SIGMOID
}
