/**
 * Checkpoint formats: {@link dev.gosling.trainer.checkpoint.TorchCheckpoint} (.pth as torch.save writes it, read with
 * a restricted unpickler), {@link dev.gosling.trainer.checkpoint.SafeTensors} (.safetensors as the reference
 * implementation writes it), both over the in-memory {@link dev.gosling.trainer.checkpoint.StateDict} of
 * {@link dev.gosling.trainer.checkpoint.NamedTensor}s, and {@link dev.gosling.trainer.checkpoint.CheckpointInspector}
 * for {@code gosling inspect}. Reference: rwkv7-reference.md §9 (container and consumers) and §6.3 (keys and shapes).
 */
package dev.gosling.trainer.checkpoint;
