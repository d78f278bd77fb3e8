-- S3: create a service, multipart, three fields and a 64 KiB file. args[1] = the path.
init = function(args)
  local b = "gmsdbenchboundary7MA4YWxkTrZu0gW"
  local parts = {}
  for _, kv in ipairs({{"language", "french"}, {"firstname", "Alexandra"}, {"phone", "6504669999"}}) do
    parts[#parts + 1] = "--" .. b .. "\r\nContent-Disposition: form-data; name=\"" .. kv[1] ..
      "\"\r\n\r\n" .. kv[2] .. "\r\n"
  end
  parts[#parts + 1] = "--" .. b .. "\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"photo.jpg\"" ..
    "\r\nContent-Type: image/jpeg\r\n\r\n" .. string.rep("\255\216\255\224JFIF", 65536 / 8) .. "\r\n"
  parts[#parts + 1] = "--" .. b .. "--\r\n"
  wrk.method = "POST"
  wrk.path = args[1]
  wrk.body = table.concat(parts)
  wrk.headers["Content-Type"] = "multipart/form-data; boundary=" .. b
end
