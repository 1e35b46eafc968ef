import { Suspense } from "react";
import AuthForm from "../AuthForm";

export const metadata = { title: "Sign in · todo-chatbot" };

export default function SignIn() {
  return (
    <Suspense>
      <AuthForm mode="sign-in" />
    </Suspense>
  );
}
