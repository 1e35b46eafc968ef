import { Suspense } from "react";
import AuthForm from "../AuthForm";

export const metadata = { title: "Sign up · todo-chatbot" };

export default function SignUp() {
  return (
    <Suspense>
      <AuthForm mode="sign-up" />
    </Suspense>
  );
}
