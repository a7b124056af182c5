#include "engine/onnx/onnx_ops.h"

namespace backflow::onnx_import {

const std::map<std::string, OpTranslation, std::less<>>& OpTable() {
  static const std::map<std::string, OpTranslation, std::less<>> table = {
      {"Add", BinaryOp},
      {"AveragePool", AveragePoolOp},
      {"BatchNormalization", BatchNormOp},
      {"Cast", CastOp},
      {"Clip", ClipOp},
      {"Concat", ConcatOp},
      {"Constant", ConstantOp},
      {"ConstantOfShape", ConstantOfShapeOp},
      {"Conv", ConvOp},
      {"Div", BinaryOp},
      {"Dropout", DropoutOp},
      {"Equal", EqualOp},
      {"Erf", UnaryOp},
      {"Exp", UnaryOp},
      {"Flatten", FlattenOp},
      {"Gather", GatherOp},
      {"Gemm", GemmOp},
      {"GlobalAveragePool", GlobalAveragePoolOp},
      {"Identity", IdentityOp},
      {"LeakyRelu", LeakyReluOp},
      {"Log", UnaryOp},
      {"LogSoftmax", SoftmaxOp},
      {"MatMul", MatMulOp},
      {"Max", BinaryOp},
      {"MaxPool", MaxPoolOp},
      {"Min", BinaryOp},
      {"Mul", BinaryOp},
      {"Neg", UnaryOp},
      {"Pad", PadOp},
      {"Pow", PowOp},
      {"Range", RangeOp},
      {"Reciprocal", UnaryOp},
      {"ReduceMean", ReduceOp},
      {"ReduceSum", ReduceOp},
      {"Relu", UnaryOp},
      {"Reshape", ReshapeOp},
      {"Shape", ShapeOp},
      {"Sigmoid", UnaryOp},
      {"Slice", SliceOp},
      {"Softmax", SoftmaxOp},
      {"Sqrt", UnaryOp},
      {"Squeeze", SqueezeOp},
      {"Sub", BinaryOp},
      {"Tanh", UnaryOp},
      {"Transpose", TransposeOp},
      {"Unsqueeze", SqueezeOp},
      {"Where", WhereOp},
  };
  return table;
}

}  // namespace backflow::onnx_import
