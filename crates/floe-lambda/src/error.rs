//! Errors in the shape of the AWS Lambda API: an error code (the `__type` /
//! `x-amzn-ErrorType` of the response), an HTTP status and a message.

use std::fmt;

/// The Lambda API's error codes that floe returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    ResourceNotFound,
    ResourceConflict,
    InvalidParameterValue,
    InvalidRequestContent,
    RequestTooLarge,
    TooManyRequests,
    CodeStorageExceeded,
    ResourceNotReady,
    /// A function's file system could not be mounted (`EFSMountFailureException`).
    EfsMountFailure,
    Service,
}

impl ErrorKind {
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::ResourceNotFound => "ResourceNotFoundException",
            ErrorKind::ResourceConflict => "ResourceConflictException",
            ErrorKind::InvalidParameterValue => "InvalidParameterValueException",
            ErrorKind::InvalidRequestContent => "InvalidRequestContentException",
            ErrorKind::RequestTooLarge => "RequestTooLargeException",
            ErrorKind::TooManyRequests => "TooManyRequestsException",
            ErrorKind::CodeStorageExceeded => "CodeStorageExceededException",
            ErrorKind::ResourceNotReady => "ResourceNotReadyException",
            ErrorKind::EfsMountFailure => "EFSMountFailureException",
            ErrorKind::Service => "ServiceException",
        }
    }

    pub fn status(self) -> u16 {
        match self {
            ErrorKind::ResourceNotFound => 404,
            ErrorKind::ResourceConflict => 409,
            ErrorKind::InvalidParameterValue
            | ErrorKind::InvalidRequestContent
            | ErrorKind::CodeStorageExceeded
            | ErrorKind::ResourceNotReady => 400,
            ErrorKind::EfsMountFailure => 403,
            ErrorKind::RequestTooLarge => 413,
            ErrorKind::TooManyRequests => 429,
            ErrorKind::Service => 500,
        }
    }
}

/// An error of the functions service, as the Lambda API would report it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LambdaError {
    pub kind: ErrorKind,
    pub message: String,
    /// `Reason` of a `TooManyRequestsException` (which limit was hit).
    pub reason: Option<&'static str>,
}

impl LambdaError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> LambdaError {
        LambdaError { kind, message: message.into(), reason: None }
    }

    pub fn invalid(message: impl Into<String>) -> LambdaError {
        LambdaError::new(ErrorKind::InvalidParameterValue, message)
    }

    pub fn not_found(name: &str) -> LambdaError {
        LambdaError::new(ErrorKind::ResourceNotFound, format!("Function not found: {name}"))
    }

    pub fn service(message: impl fmt::Display) -> LambdaError {
        LambdaError::new(ErrorKind::Service, message.to_string())
    }

    pub fn throttled(reason: &'static str) -> LambdaError {
        LambdaError { kind: ErrorKind::TooManyRequests, message: "Rate Exceeded.".to_string(), reason: Some(reason) }
    }

    /// The JSON body the Lambda API sends with this error.
    pub fn body(&self) -> serde_json::Value {
        let mut body = serde_json::json!({ "Type": "User", "message": self.message });
        if self.kind == ErrorKind::Service {
            body["Type"] = "Service".into();
        }
        if let Some(reason) = self.reason {
            body["Reason"] = reason.into();
        }
        body
    }
}

impl fmt::Display for LambdaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.code(), self.message)
    }
}

impl std::error::Error for LambdaError {}

impl From<floe_meta::MetaError> for LambdaError {
    fn from(e: floe_meta::MetaError) -> LambdaError {
        LambdaError::service(format!("metadata: {e}"))
    }
}

pub type Result<T, E = LambdaError> = std::result::Result<T, E>;
