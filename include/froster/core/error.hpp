#pragma once
/// @file
/// Exceptions thrown by froster. Every message says what was expected and what was found.

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace froster {

/// Base class of every exception froster throws.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

/// A tensor's shape, strides, device or element type does not fit the operation.
class ShapeError : public Error {
 public:
  using Error::Error;
};

/// An argument's value is out of its allowed range (a label, a temperature, a configuration field).
class ValueError : public Error {
 public:
  using Error::Error;
};

/// A computation produced a non-finite result (NaN or Inf in the inputs, overflow).
class NumericError : public Error {
 public:
  using Error::Error;
};

/// A file could not be opened, mapped, read or written (the message names the path and the system's reason).
class IoError : public Error {
 public:
  using Error::Error;
};

/// A file's content breaks its format (a safetensors header, a pickle stream, a vocabulary, an image): the message
/// names the file, the place in it, and what was expected there.
class FormatError : public Error {
 public:
  using Error::Error;
};

namespace detail {

template <class... Parts>
std::string concat(const Parts&... parts) {
  std::ostringstream out;
  (out << ... << parts);
  return out.str();
}

}  // namespace detail

/// Throws `E` with the concatenation of `parts` unless `condition` holds.
template <class E = Error, class... Parts>
void require(bool condition, const Parts&... parts) {
  if (!condition) throw E(detail::concat(parts...));
}

}  // namespace froster
