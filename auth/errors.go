package auth

import "encoding/json"

// errorBody is the OpenAI-shaped body of a 401.
func errorBody(msg string) []byte {
	b, _ := json.Marshal(map[string]any{"error": map[string]any{
		"message": msg, "type": "invalid_request_error", "param": nil, "code": "invalid_api_key",
	}})
	return b
}
