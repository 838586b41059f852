// What the kernels asked of the emulated GPU, counted: launches by kernel, cuBLAS calls by entry
// point (with their matrices and FLOPs), and copies and fills by direction (with their bytes).
// These counts are the same on the emulator as on a GPU, because they come from the library's
// host code, so they measure what a GPU's speed depends on beside arithmetic and bandwidth: each
// launch costs a few microseconds of issue time, and each copy to the host drains the stream.
//
// DPCUDA_EMULATOR_PROFILE=<file> appends one JSON line per process at exit, e.g.
//   {"pid": 7, "launches": {"adamw_kernel": 3}, "blas": {"cublasSgemm": {"calls": 2, "matrices": 2,
//    "flops": 4096}}, "copies": {"device_to_host": {"calls": 1, "bytes": 4}}}
// scripts/bench/cuda-launches turns two of them into counts per training step.
#include "cuda_runtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <map>
#include <mutex>
#include <string>

namespace dpcemu {
namespace {

struct Tally {
    uint64_t calls = 0, matrices = 0;
    double amount = 0; // FLOPs for cuBLAS, bytes for copies
};

struct Profile {
    std::mutex lock;
    std::map<std::string, uint64_t> launches;
    std::map<std::string, Tally> blas, copies;
    const char *path = getenv("DPCUDA_EMULATOR_PROFILE");

    ~Profile() {
        if (path == nullptr) return;
        FILE *file = fopen(path, "a");
        if (file == nullptr) {
            fprintf(stderr, "DPCUDA_EMULATOR_PROFILE=%s: cannot open it for appending\n", path);
            return;
        }
        fprintf(file, "{\"pid\": %d, \"launches\": {", (int)getpid());
        const char *separator = "";
        for (const auto &[kernel, count] : launches) {
            fprintf(file, "%s\"%s\": %llu", separator, kernel.c_str(), (unsigned long long)count);
            separator = ", ";
        }
        fprintf(file, "}, \"blas\": {");
        separator = "";
        for (const auto &[call, tally] : blas) {
            fprintf(file, "%s\"%s\": {\"calls\": %llu, \"matrices\": %llu, \"flops\": %.0f}", separator, call.c_str(),
                    (unsigned long long)tally.calls, (unsigned long long)tally.matrices, tally.amount);
            separator = ", ";
        }
        fprintf(file, "}, \"copies\": {");
        separator = "";
        for (const auto &[direction, tally] : copies) {
            fprintf(file, "%s\"%s\": {\"calls\": %llu, \"bytes\": %.0f}", separator, direction.c_str(),
                    (unsigned long long)tally.calls, tally.amount);
            separator = ", ";
        }
        fprintf(file, "}}\n");
        fclose(file);
    }
};

Profile &profile() {
    static Profile instance; // destroyed at exit, which writes it
    return instance;
}

} // namespace

void count_launch(const char *kernel) {
    Profile &p = profile();
    if (p.path == nullptr) return;
    std::lock_guard<std::mutex> guard(p.lock);
    p.launches[kernel]++;
}

void count_blas(const char *call, uint64_t matrices, double flops) {
    Profile &p = profile();
    if (p.path == nullptr) return;
    std::lock_guard<std::mutex> guard(p.lock);
    Tally &tally = p.blas[call];
    tally.calls++;
    tally.matrices += matrices;
    tally.amount += flops;
}

void count_copy(const char *direction, size_t bytes) {
    Profile &p = profile();
    if (p.path == nullptr) return;
    std::lock_guard<std::mutex> guard(p.lock);
    Tally &tally = p.copies[direction];
    tally.calls++;
    tally.amount += (double)bytes;
}

} // namespace dpcemu
