package dev.gosling.trainer.checkpoint;

import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Optional;

/**
 * Named tensors in insertion order. The order is the state-dict order: it is the order a .pth pickles its keys
 * and the order torch's load_state_dict and the RWKV tools see them in.
 */
public final class StateDict implements Iterable<NamedTensor> {
    private final LinkedHashMap<String, NamedTensor> tensors = new LinkedHashMap<>();

    public StateDict() {
    }

    public static StateDict of(Collection<NamedTensor> tensors) {
        StateDict dict = new StateDict();
        tensors.forEach(dict::add);
        return dict;
    }

    public static StateDict of(NamedTensor... tensors) {
        return of(List.of(tensors));
    }

    /** Appends a tensor; a name may appear once. */
    public StateDict add(NamedTensor tensor) {
        if (tensors.putIfAbsent(tensor.name(), tensor) != null) {
            throw new IllegalArgumentException("state dict already holds a tensor named " + tensor.name());
        }
        return this;
    }

    public boolean contains(String name) {
        return tensors.containsKey(name);
    }

    public Optional<NamedTensor> find(String name) {
        return Optional.ofNullable(tensors.get(name));
    }

    public NamedTensor get(String name) {
        NamedTensor t = tensors.get(name);
        if (t == null) {
            throw new IllegalArgumentException("state dict holds no tensor named " + name);
        }
        return t;
    }

    public List<String> names() {
        return Collections.unmodifiableList(new ArrayList<>(tensors.keySet()));
    }

    public List<NamedTensor> tensors() {
        return Collections.unmodifiableList(new ArrayList<>(tensors.values()));
    }

    public List<TensorSpec> specs() {
        List<TensorSpec> specs = new ArrayList<>(tensors.size());
        tensors.values().forEach(t -> specs.add(t.spec()));
        return specs;
    }

    public int size() {
        return tensors.size();
    }

    public boolean isEmpty() {
        return tensors.isEmpty();
    }

    public long totalParameters() {
        long n = 0;
        for (NamedTensor t : tensors.values()) {
            n += t.numel();
        }
        return n;
    }

    public long totalBytes() {
        long n = 0;
        for (NamedTensor t : tensors.values()) {
            n += t.byteSize();
        }
        return n;
    }

    @Override
    public Iterator<NamedTensor> iterator() {
        return tensors().iterator();
    }

    /** Equal when the same tensors appear in the same order. */
    @Override
    public boolean equals(Object o) {
        return o instanceof StateDict && tensors().equals(((StateDict) o).tensors());
    }

    @Override
    public int hashCode() {
        return tensors().hashCode();
    }

    @Override
    public String toString() {
        return "StateDict" + tensors.values();
    }
}
