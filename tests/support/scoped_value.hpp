#pragma once
// ScopedValue: sets a variable for the rest of a scope and restores it on exit, a failing REQUIRE included (tests
// that lower a tuning knob such as cpu::detail::gemm_chunk_budget must not leave it lowered for later tests).

namespace froster::test {

template <class T>
class ScopedValue {
 public:
  ScopedValue(T& variable, T value) : variable_(variable), saved_(variable) { variable_ = value; }
  ScopedValue(const ScopedValue&) = delete;
  ScopedValue& operator=(const ScopedValue&) = delete;
  ~ScopedValue() { variable_ = saved_; }

 private:
  T& variable_;
  T saved_;
};

}  // namespace froster::test
