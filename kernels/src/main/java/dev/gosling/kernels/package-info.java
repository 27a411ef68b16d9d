/**
 * CUDA kernels for the RWKV-7 trainer and their Java loader (fatbin from the build, NVRTC fallback, disk cache).
 * The CUDA sources live in {@code src/main/cuda}; this module depends on the Bytedeco CUDA presets only.
 */
package dev.gosling.kernels;
